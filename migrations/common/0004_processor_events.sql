-- processor_events records each notification a processor sent (a Stripe
-- event ID) in the transaction that applied it, so each takes effect once.
CREATE TABLE processor_events (
    tenant_id    UUID        NOT NULL,
    processor    TEXT        NOT NULL,
    event_id     TEXT        NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, processor, event_id)
);
