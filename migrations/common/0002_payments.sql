-- Payments, refunds, events (the outbox) and idempotency records.
-- Every table is tenant-scoped with tenant_id first in its primary key.

CREATE TABLE payments (
    tenant_id                 UUID        NOT NULL,
    id                        UUID        NOT NULL,
    amount                    BIGINT      NOT NULL CHECK (amount > 0),
    currency                  TEXT        NOT NULL CHECK (length(currency) = 3),
    status                    TEXT        NOT NULL CHECK (status IN ('pending', 'requires_action', 'requires_capture', 'succeeded', 'failed', 'canceled')),
    capture_method            TEXT        NOT NULL CHECK (capture_method IN ('automatic', 'manual')),
    payment_method            TEXT        NOT NULL CHECK (length(payment_method) BETWEEN 1 AND 255),
    description               TEXT        CHECK (length(description) <= 1000),
    customer                  TEXT        CHECK (length(customer) <= 255),
    metadata                  JSONB       NOT NULL DEFAULT '{}',
    location_lat              DOUBLE PRECISION,
    location_lon              DOUBLE PRECISION,
    geohash                   TEXT        CHECK (length(geohash) = 9),
    amount_capturable         BIGINT      NOT NULL DEFAULT 0 CHECK (amount_capturable >= 0 AND amount_capturable <= amount),
    amount_captured           BIGINT      NOT NULL DEFAULT 0 CHECK (amount_captured >= 0 AND amount_captured <= amount),
    amount_refunded           BIGINT      NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    amount_refund_pending     BIGINT      NOT NULL DEFAULT 0 CHECK (amount_refund_pending >= 0),
    fee                       BIGINT      NOT NULL DEFAULT 0 CHECK (fee >= 0),
    processor                 TEXT        NOT NULL,
    processor_ref             TEXT,
    operation                 TEXT        CHECK (operation IN ('authorize', 'capture', 'cancel')),
    operation_started_at      TIMESTAMPTZ,
    operation_amount          BIGINT      CHECK (operation_amount > 0),
    next_action               JSONB,
    failure_code              TEXT,
    failure_message           TEXT,
    decline_code              TEXT,
    version                   INT         NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT payments_refund_bound CHECK (amount_refunded + amount_refund_pending <= amount_captured),
    CONSTRAINT payments_location_pair CHECK ((location_lat IS NULL) = (location_lon IS NULL) AND (location_lat IS NULL) = (geohash IS NULL))
);
CREATE INDEX payments_by_status ON payments (tenant_id, status, id);
CREATE INDEX payments_by_customer ON payments (tenant_id, customer, id);
CREATE INDEX payments_by_created ON payments (tenant_id, created_at, id);
-- The reconciler finds operations left unfinished by a crash.
CREATE INDEX payments_by_operation ON payments (operation_started_at) WHERE operation IS NOT NULL;
-- ... and payments the processor still reports as processing.
CREATE INDEX payments_pending ON payments (updated_at) WHERE status = 'pending';

CREATE TABLE refunds (
    tenant_id       UUID        NOT NULL,
    id              UUID        NOT NULL,
    payment_id      UUID        NOT NULL,
    amount          BIGINT      NOT NULL CHECK (amount > 0),
    currency        TEXT        NOT NULL CHECK (length(currency) = 3),
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    reason          TEXT        CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
    processor_ref   TEXT,
    failure_reason  TEXT,
    version         INT         NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id)
);
CREATE INDEX refunds_by_payment ON refunds (tenant_id, payment_id, id);
CREATE INDEX refunds_pending ON refunds (updated_at) WHERE status = 'pending';

-- events is the outbox: written in the transaction of the change it
-- describes, delivered by a worker after commit.
CREATE TABLE events (
    tenant_id       UUID        NOT NULL,
    id              UUID        NOT NULL,
    type            TEXT        NOT NULL CHECK (length(type) BETWEEN 1 AND 100),
    object_type     TEXT        NOT NULL,
    object_id       UUID        NOT NULL,
    object_version  INT         NOT NULL,
    data            JSONB       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX events_by_type ON events (tenant_id, type, id);
CREATE INDEX events_by_object ON events (tenant_id, object_id, id);

-- idempotency_keys records each POST made with an Idempotency-Key. The
-- record commits with the request's effects; a completed one holds the
-- exact answer for replays.
CREATE TABLE idempotency_keys (
    tenant_id        UUID        NOT NULL,
    key              TEXT        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint      BYTEA       NOT NULL CHECK (length(fingerprint) = 32),
    method           TEXT        NOT NULL,
    path             TEXT        NOT NULL,
    status           TEXT        NOT NULL CHECK (status IN ('in_progress', 'completed')),
    locked_until     TIMESTAMPTZ,
    resource_id      UUID,
    response_status  INT,
    response_body    BYTEA,
    created_at       TIMESTAMPTZ NOT NULL,
    completed_at     TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, key),
    CONSTRAINT idempotency_completed CHECK ((status = 'completed') = (response_status IS NOT NULL AND response_body IS NOT NULL))
);
CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at);
