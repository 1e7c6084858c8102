-- The fan-out reads the oldest undispatched events. This index is its own
-- file (it sorts right after 0005_webhooks): CockroachDB refuses a partial
-- index whose predicate names a column added in the same transaction, and
-- each file is applied in one transaction.
CREATE INDEX events_undispatched ON events (created_at) WHERE dispatched_at IS NULL;
