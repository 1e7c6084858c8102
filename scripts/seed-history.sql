-- seed-history.sql fills a migrated database with a history of succeeded
-- payments, as the load generator would have left them: each with its
-- idempotency record, its payment.created and payment.succeeded events
-- (dispatched), its charge ledger transaction and three entries. It is for
-- measuring the write path with history in the tables, such as
--   psql "$DATABASE_URL" -v n=1000000 -v tenants=200 -f scripts/seed-history.sql
-- Rows are spread over :tenants tenants that exist only in these tables.
\set ON_ERROR_STOP on
BEGIN;
CREATE TEMP TABLE seed ON COMMIT DROP AS
SELECT g,
       ('00000000-0000-4000-8000-' || lpad(to_hex(g % :tenants), 12, '0'))::UUID AS tenant_id,
       gen_random_uuid() AS id, gen_random_uuid() AS tx_id,
       now() - make_interval(secs => (:n - g) / 1000.0) AS at
FROM generate_series(1, :n) AS g;
INSERT INTO payments (tenant_id, id, amount, currency, status, capture_method, payment_method, metadata,
    amount_capturable, amount_captured, amount_refunded, amount_refund_pending, fee, processor, processor_ref,
    version, created_at, updated_at)
SELECT tenant_id, id, 2000, 'usd', 'succeeded', 'automatic', 'pm_card_visa', '{}', 0, 2000, 0, 0, 88, 'sandbox',
       'sbx_seed_' || g, 2, at, at FROM seed;
INSERT INTO idempotency_keys (tenant_id, key, fingerprint, method, path, status, resource_id, response_status,
    response_body, created_at, completed_at)
SELECT tenant_id, 'seed-' || g, sha256(g::TEXT::BYTEA), 'POST', '/v1/payments', 'completed', id, 201,
       convert_to(repeat('x', 700), 'UTF8'), at, at FROM seed;
INSERT INTO events (tenant_id, id, type, object_type, object_id, object_version, data, created_at, dispatched_at)
SELECT tenant_id, gen_random_uuid(), t.type, 'payment', id, t.v, jsonb_build_object('id', id, 'pad', repeat('x', 450)), at, at
FROM seed, (VALUES ('payment.created', 1), ('payment.succeeded', 2)) AS t (type, v);
INSERT INTO ledger_transactions (tenant_id, id, currency, type, source_type, source_id, amount, fee, net, created_at)
SELECT tenant_id, tx_id, 'usd', 'charge', 'payment', id, 2000, 88, 1912, at FROM seed;
INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount, created_at)
SELECT tenant_id, tx_id, e.account, 'usd', e.amount, at
FROM seed, (VALUES ('processor_clearing', -2000), ('merchant_balance', 1912), ('processor_fees', 88)) AS e (account, amount);
-- The running totals that postings keep (ledger_balance_slots).
INSERT INTO ledger_balance_slots (tenant_id, currency, account, slot, amount, entries)
SELECT tenant_id, 'usd', e.account, 0, count(*) * e.amount, count(*)
FROM seed, (VALUES ('processor_clearing', -2000), ('merchant_balance', 1912), ('processor_fees', 88)) AS e (account, amount)
GROUP BY tenant_id, e.account, e.amount
ON CONFLICT (tenant_id, currency, account, slot) DO UPDATE
    SET amount = ledger_balance_slots.amount + excluded.amount, entries = ledger_balance_slots.entries + excluded.entries;
COMMIT;
VACUUM ANALYZE;
