-- One pgbench transaction: :batch succeeded payments of a random tenant,
-- each with its charge ledger transaction, three entries and two events,
-- written as multi-row statements in one SERIALIZABLE transaction. It is
-- the database's own ceiling for the write path, without the service:
--   pgbench -n -f loadtest/pgbench/payments.sql -D batch=20 -c 8 -j 2 -T 15 "$DATABASE_URL"
-- (payments per second = tps x batch). Run it on a scratch migrated database.
\set t random(0, 199)
BEGIN ISOLATION LEVEL SERIALIZABLE;
WITH p AS (
  INSERT INTO payments (tenant_id, id, amount, currency, status, capture_method, payment_method, metadata,
      amount_capturable, amount_captured, amount_refunded, amount_refund_pending, fee, processor, version, created_at, updated_at)
  SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(:t), 12, '0'))::UUID, gen_random_uuid(), 2000, 'usd', 'succeeded',
      'automatic', 'pm_card_visa', '{}', 0, 2000, 0, 0, 88, 'sandbox', 2, now(), now()
  FROM generate_series(1, :batch)
  RETURNING tenant_id, id
), l AS (
  INSERT INTO ledger_transactions (tenant_id, id, currency, type, source_type, source_id, amount, fee, net)
  SELECT tenant_id, gen_random_uuid(), 'usd', 'charge', 'payment', id, 2000, 88, 1912 FROM p
  RETURNING tenant_id, id
), e AS (
  INSERT INTO ledger_entries (tenant_id, transaction_id, account, currency, amount)
  SELECT tenant_id, id, a.account, 'usd', a.amount
  FROM l, (VALUES ('processor_clearing', -2000), ('merchant_balance', 1912), ('processor_fees', 88)) AS a (account, amount)
)
INSERT INTO events (tenant_id, id, type, object_type, object_id, object_version, data, created_at)
SELECT tenant_id, gen_random_uuid(), v.type, 'payment', id, v.n, '{"object":"payment"}', now()
FROM p, (VALUES ('payment.created', 1), ('payment.succeeded', 2)) AS v (type, n);
COMMIT;
