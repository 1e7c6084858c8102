-- The ledger learns payouts (issue 14): the accounts payouts_in_transit and
-- payouts_paid, the source type payout and the transaction types payout
-- (merchant_balance -> payouts_in_transit), payout_paid
-- (payouts_in_transit -> payouts_paid, which leaves the balance unchanged,
-- so its amount is 0) and payout_reversal (payouts_in_transit ->
-- merchant_balance, a failed or canceled payout).
--
-- The lists were unnamed column checks; they are replaced by named ones.
-- PostgreSQL named them <table>_<column>_check, CockroachDB check_<column>:
-- both spellings are dropped if they exist, and so are the named lists of
-- migration 0026 (disputes), whose values these lists keep.
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_type_check;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS check_type;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_source_type_check;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS check_source_type;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_amount_check;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS check_amount;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_type_known;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_source_type_known;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_type_known
    CHECK (type IN ('charge', 'refund', 'adjustment', 'dispute', 'dispute_reversal', 'payout', 'payout_paid', 'payout_reversal'));
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_source_type_known
    CHECK (source_type IN ('payment', 'refund', 'dispute', 'payout'));
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_amount_nonzero
    CHECK (amount <> 0 OR type = 'payout_paid');
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_payout CHECK (
    type NOT IN ('payout', 'payout_paid', 'payout_reversal')
    OR (source_type = 'payout' AND fee = 0 AND payment_id IS NULL AND (
        (type = 'payout' AND amount < 0) OR (type = 'payout_paid' AND amount = 0) OR (type = 'payout_reversal' AND amount > 0))));

ALTER TABLE ledger_entries DROP CONSTRAINT IF EXISTS ledger_entries_account_check;
ALTER TABLE ledger_entries DROP CONSTRAINT IF EXISTS check_account;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_account_known
    CHECK (account IN ('processor_clearing', 'merchant_balance', 'processor_fees', 'payouts_in_transit', 'payouts_paid'));
ALTER TABLE ledger_balance_slots DROP CONSTRAINT IF EXISTS ledger_balance_slots_account_check;
ALTER TABLE ledger_balance_slots DROP CONSTRAINT IF EXISTS check_account;
ALTER TABLE ledger_balance_slots ADD CONSTRAINT ledger_balance_slots_account_known
    CHECK (account IN ('processor_clearing', 'merchant_balance', 'processor_fees', 'payouts_in_transit', 'payouts_paid'));
ALTER TABLE ledger_checkpoints DROP CONSTRAINT IF EXISTS ledger_checkpoints_account_check;
ALTER TABLE ledger_checkpoints DROP CONSTRAINT IF EXISTS check_account;
ALTER TABLE ledger_checkpoints ADD CONSTRAINT ledger_checkpoints_account_known
    CHECK (account IN ('processor_clearing', 'merchant_balance', 'processor_fees', 'payouts_in_transit', 'payouts_paid'));
