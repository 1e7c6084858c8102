-- New events are never marked dispatched since event_outbox (0009); the
-- column stays for the events marked before it. This is its own file: a
-- schema change that drops an index is kept apart from the writes of 0009,
-- as CockroachDB applies each file in one transaction.
DROP INDEX events_undispatched;
