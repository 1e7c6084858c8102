-- Webhooks: merchant endpoints, one delivery per (event, endpoint), and the
-- attempts of each delivery. Every table is tenant-scoped with tenant_id
-- first in its primary key.

-- dispatched_at marks an event whose deliveries the fan-out has created.
-- The payment transactions never read endpoints: they append events with
-- dispatched_at NULL, and the webhook worker fans them out later. The partial
-- index over the undispatched events is in 0005_webhooks_dispatch_index.sql:
-- CockroachDB refuses a partial index whose predicate names a column added in
-- the same transaction, and the runner applies each file in one transaction.
ALTER TABLE events ADD COLUMN dispatched_at TIMESTAMPTZ;

-- webhook_endpoints holds the URLs merchants register. The signing secret is
-- stored in plaintext because the worker must sign with it (see the webhooks
-- package documentation); previous_secret keeps signing alongside the new one
-- until previous_secret_expires_at after a rotation. deleted_at keeps the row
-- for the deliveries that name it; a deleted endpoint answers 404.
CREATE TABLE webhook_endpoints (
    tenant_id                  UUID        NOT NULL,
    id                         UUID        NOT NULL,
    url                        TEXT        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description                TEXT        CHECK (length(description) <= 1000),
    enabled_events             TEXT[]      NOT NULL,
    status                     TEXT        NOT NULL CHECK (status IN ('enabled', 'disabled')),
    disabled_reason            TEXT        CHECK (disabled_reason IN ('requested', 'failing')),
    secret                     TEXT        NOT NULL CHECK (length(secret) BETWEEN 40 AND 100),
    previous_secret            TEXT        CHECK (length(previous_secret) BETWEEN 40 AND 100),
    previous_secret_expires_at TIMESTAMPTZ,
    -- failing_since is when the current run of failed deliveries began; a
    -- successful delivery clears it. An endpoint failing for the whole retry
    -- span is disabled.
    failing_since              TIMESTAMPTZ,
    version                    INT         NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL,
    deleted_at                 TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT webhook_endpoints_events CHECK (array_length(enabled_events, 1) BETWEEN 1 AND 64),
    CONSTRAINT webhook_endpoints_previous CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL)),
    CONSTRAINT webhook_endpoints_disabled CHECK ((status = 'disabled') = (disabled_reason IS NOT NULL))
);

-- webhook_deliveries holds one row per event and endpoint. A worker claims a
-- due row by lease: lease_owner, lease_expires_at, and lease_version, which
-- grows by one on every claim. An outcome is recorded only by an UPDATE that
-- names the lease_version the worker holds, so a worker whose lease ran out
-- cannot overwrite the outcome of the worker that took the row over.
CREATE TABLE webhook_deliveries (
    tenant_id         UUID        NOT NULL,
    id                UUID        NOT NULL,
    event_id          UUID        NOT NULL,
    endpoint_id       UUID        NOT NULL,
    event_type        TEXT        NOT NULL CHECK (length(event_type) BETWEEN 1 AND 100),
    event_created_at  TIMESTAMPTZ NOT NULL,
    status            TEXT        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- attempts counts attempts started (claims) in the current cycle; a
    -- redelivery starts a new cycle at started_at.
    attempts          INT         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    started_at        TIMESTAMPTZ NOT NULL,
    next_attempt_at   TIMESTAMPTZ,
    lease_owner       TEXT        CHECK (length(lease_owner) BETWEEN 1 AND 200),
    lease_expires_at  TIMESTAMPTZ,
    lease_version     BIGINT      NOT NULL DEFAULT 0 CHECK (lease_version >= 0),
    last_status_code  INT,
    last_error        TEXT        CHECK (length(last_error) <= 1000),
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    completed_at      TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    -- Concurrent fan-outs insert with ON CONFLICT DO NOTHING on this key, so
    -- an event reaches an endpoint through one delivery row.
    CONSTRAINT webhook_deliveries_once UNIQUE (tenant_id, event_id, endpoint_id),
    CONSTRAINT webhook_deliveries_pending CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
    CONSTRAINT webhook_deliveries_completed CHECK ((status = 'pending') = (completed_at IS NULL)),
    CONSTRAINT webhook_deliveries_lease CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id),
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id)
);
-- Workers claim due rows in next_attempt_at order.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- The age of the oldest undelivered event (a metric).
CREATE INDEX webhook_deliveries_undelivered ON webhook_deliveries (event_created_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);

-- webhook_attempts records each attempt for the merchant to inspect, with at
-- most 64 KiB of the receiver's answer.
CREATE TABLE webhook_attempts (
    tenant_id          UUID        NOT NULL,
    delivery_id        UUID        NOT NULL,
    id                 UUID        NOT NULL,
    attempted_at       TIMESTAMPTZ NOT NULL,
    status_code        INT         CHECK (status_code BETWEEN 100 AND 999),
    latency_ms         INT         NOT NULL CHECK (latency_ms >= 0),
    error              TEXT        CHECK (length(error) <= 1000),
    response_body      BYTEA       NOT NULL CHECK (length(response_body) <= 65536),
    response_truncated BOOLEAN     NOT NULL,
    PRIMARY KEY (tenant_id, delivery_id, id),
    FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id)
);
