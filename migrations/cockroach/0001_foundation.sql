-- CockroachDB only: the directory tables are read from every region, so they
-- are GLOBAL tables when the database is multi-region. On a database without
-- regions these statements are skipped by the runner's guard below.
-- (Kept as a no-op marker until the multi-region rollout sets regions; see
-- docs/ARCHITECTURE.md.)
SELECT 1;
