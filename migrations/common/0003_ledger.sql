-- The ledger: an exact double-entry book per tenant and currency (DESIGN.md
-- rules 5 and 7). Amounts are BIGINT minor units. There is no balance table:
-- a balance is a sum over ledger_entries, so no row is updated by every
-- payment and concurrent bookings never contend on one key.

-- ledger_transactions holds one row per booked movement of money. The row is
-- also the merchant's "balance transaction": amount, fee and net describe the
-- movement as the merchant's balance sees it (money leaving it is negative).
CREATE TABLE ledger_transactions (
    tenant_id   UUID        NOT NULL,
    id          UUID        NOT NULL,
    currency    TEXT        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    type        TEXT        NOT NULL CHECK (type IN ('charge', 'refund', 'adjustment')),
    source_type TEXT        NOT NULL CHECK (source_type IN ('payment', 'refund')),
    source_id   UUID        NOT NULL,
    -- payment_id is the payment a refund belongs to; a charge's payment is
    -- its source_id.
    payment_id  UUID,
    amount      BIGINT      NOT NULL CHECK (amount <> 0),
    fee         BIGINT      NOT NULL CHECK (fee >= 0),
    net         BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT ledger_transactions_net CHECK (net = amount - fee),
    CONSTRAINT ledger_transactions_charge CHECK (
        type <> 'charge' OR (source_type = 'payment' AND amount > 0 AND fee <= amount AND payment_id IS NULL)),
    CONSTRAINT ledger_transactions_refund CHECK (
        type <> 'refund' OR (source_type = 'refund' AND amount < 0 AND fee = 0 AND payment_id IS NOT NULL)),
    -- One source is booked once per type: a retried database transaction or
    -- a duplicate webhook cannot book the same payment or refund twice.
    -- source_id leads after tenant_id (the constraint means the same in any
    -- column order) so that this index also serves "filter by source".
    CONSTRAINT ledger_transactions_source_key UNIQUE (tenant_id, source_id, source_type, type)
);
CREATE INDEX ledger_transactions_by_type ON ledger_transactions (tenant_id, type, id);
CREATE INDEX ledger_transactions_by_payment ON ledger_transactions (tenant_id, payment_id, id) WHERE payment_id IS NOT NULL;

-- ledger_entries holds the legs of each transaction, at most one per
-- account. The legs of one transaction sum to zero; the code asserts that
-- before every write and after every read.
CREATE TABLE ledger_entries (
    tenant_id      UUID        NOT NULL,
    transaction_id UUID        NOT NULL,
    account        TEXT        NOT NULL CHECK (account IN ('processor_clearing', 'merchant_balance', 'processor_fees')),
    currency       TEXT        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    amount         BIGINT      NOT NULL CHECK (amount <> 0),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, transaction_id, account),
    FOREIGN KEY (tenant_id, transaction_id) REFERENCES ledger_transactions (tenant_id, id)
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (tenant_id, currency, account);
