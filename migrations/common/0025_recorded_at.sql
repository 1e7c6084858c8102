-- The fan-out sends an event to the endpoints that existed when it
-- happened. It compared the event's created_at with the endpoint's, both
-- taken from the clocks of the processes that wrote them, so an API process
-- whose clock ran behind another's could make a new endpoint look older
-- than the events after it (or an event older than the endpoint), and the
-- event was skipped for good. recorded_at is the database's clock (the
-- transaction's timestamp), the same for every writer; the fan-out
-- compares it. Existing rows get the time of this migration, which delivers
-- every event still waiting to every endpoint existing now.
ALTER TABLE events ADD COLUMN recorded_at TIMESTAMPTZ NOT NULL DEFAULT now();
ALTER TABLE webhook_endpoints ADD COLUMN recorded_at TIMESTAMPTZ NOT NULL DEFAULT now();
