-- event_outbox lists the events whose webhook deliveries the fan-out has
-- not created yet: one narrow row per event, inserted in the event's own
-- transaction and deleted by the fan-out. It replaces marking the wide
-- events row (dispatched_at), which cost an UPDATE of the event with its
-- snapshot, and of every index of events, for every event.
CREATE TABLE event_outbox (
    tenant_id  UUID        NOT NULL,
    event_id   UUID        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE INDEX event_outbox_by_created ON event_outbox (created_at);

INSERT INTO event_outbox (tenant_id, event_id, created_at)
SELECT tenant_id, id, created_at FROM events WHERE dispatched_at IS NULL;
