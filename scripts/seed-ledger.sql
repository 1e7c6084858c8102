-- seed-ledger.sql fills one tenant's ledger with :n charges of 2000 usd
-- (fee 88), three entries each, booked :rate per second and ending two
-- minutes ago, with the running totals that postings keep. It is for
-- measuring balance reads at a given history size (scripts/bench-balance.sh):
--   psql "$DATABASE_URL" -v n=3333334 -v rate=1000 -v tenant=UUID -f scripts/seed-ledger.sql
\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE seed ON COMMIT DROP AS
SELECT g, gen_random_uuid() AS id, gen_random_uuid() AS tx_id,
       now() - interval '2 minutes' - make_interval(secs => (:n - g) / :rate::FLOAT8) AS at
FROM generate_series(1, :n) AS g;
INSERT INTO ledger_transactions (tenant_id, id, currency, type, source_type, source_id, amount, fee, net, created_at)
SELECT :'tenant', tx_id, 'usd', 'charge', 'payment', id, 2000, 88, 1912, at FROM seed;
INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount, created_at)
SELECT :'tenant', tx_id, e.account, 'usd', e.amount, at
FROM seed, (VALUES ('processor_clearing', -2000), ('merchant_balance', 1912), ('processor_fees', 88)) AS e (account, amount);
INSERT INTO ledger_balance_slots (tenant_id, currency, account, slot, amount, entries)
SELECT :'tenant', 'usd', e.account, 0, :n::BIGINT * e.amount, :n
FROM (VALUES ('processor_clearing', -2000), ('merchant_balance', 1912), ('processor_fees', 88)) AS e (account, amount)
ON CONFLICT (tenant_id, currency, account, slot) DO UPDATE
    SET amount = ledger_balance_slots.amount + excluded.amount, entries = ledger_balance_slots.entries + excluded.entries;
COMMIT;
VACUUM ANALYZE ledger_transactions, ledger_entries, ledger_balance_slots;
