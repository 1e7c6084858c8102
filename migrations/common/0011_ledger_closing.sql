-- Constant-time balances, point-in-time balances and seals (issue 9).
--
-- ledger_entries_by_time orders a tenant's entries by booking time, with
-- everything a balance, a checkpoint and a seal read in the index itself:
-- the tail of a balance after its checkpoint and the entries of a sealed
-- period are one range of it. Its key ends with the primary key's columns,
-- which is the canonical order of a seal's leaves. It replaces
-- ledger_entries_by_account, whose only reader was the old full-history sum,
-- so the write path keeps the same number of indexes.
CREATE INDEX ledger_entries_by_time ON ledger_entries (tenant_id, created_at, transaction_id, account) INCLUDE (currency, amount);
DROP INDEX ledger_entries_by_account;

-- ledger_balance_slots holds each tenant's running totals per currency and
-- account, split over slots (a PN-counter): every posting statement adds its
-- batch's sums to one slot chosen at random, so concurrent batches of one
-- tenant rarely touch the same row, and a balance is the sum of at most
-- 16 slots per currency and account, whatever the history's size. The
-- totals of existing history are backfilled into slot 0 below.
CREATE TABLE ledger_balance_slots (
    tenant_id UUID   NOT NULL,
    currency  TEXT   NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    account   TEXT   NOT NULL CHECK (account IN ('processor_clearing', 'merchant_balance', 'processor_fees')),
    slot      INT    NOT NULL CHECK (slot >= 0 AND slot < 16),
    amount    BIGINT NOT NULL,
    entries   BIGINT NOT NULL CHECK (entries >= 0),
    PRIMARY KEY (tenant_id, currency, account, slot)
);
INSERT INTO ledger_balance_slots (tenant_id, currency, account, slot, amount, entries)
SELECT tenant_id, currency, account, 0, sum(amount)::BIGINT, count(*)
FROM ledger_entries GROUP BY tenant_id, currency, account;

-- ledger_checkpoints holds, per tenant and instant as_of, the running totals
-- of every (currency, account) the tenant has used: the sum and the count of
-- its entries booked before as_of. A balance is the latest checkpoint plus
-- the entries after it. The worker writes checkpoints off the payment path,
-- every few thousand entries, only for instants older than the closing
-- delay; no payment ever updates a row here.
CREATE TABLE ledger_checkpoints (
    tenant_id     UUID        NOT NULL,
    as_of         TIMESTAMPTZ NOT NULL,
    currency      TEXT        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    account       TEXT        NOT NULL CHECK (account IN ('processor_clearing', 'merchant_balance', 'processor_fees')),
    amount_total  BIGINT      NOT NULL,
    entries_total BIGINT      NOT NULL CHECK (entries_total > 0),
    PRIMARY KEY (tenant_id, as_of, currency, account)
);

-- ledger_closings holds, per tenant, the instant before which its book is
-- closed: a checkpoint or a seal covers it, and a posting booked before it
-- is refused (the posting statement reads this row; only the worker writes
-- it, a few times a minute at most).
CREATE TABLE ledger_closings (
    tenant_id     UUID        NOT NULL PRIMARY KEY,
    closed_before TIMESTAMPTZ NOT NULL
);

-- ledger_seals holds one seal per tenant and closed period that has entries:
-- the Merkle root of the period's entries in canonical order, their count
-- and per-currency, per-account totals, chained to the tenant's previous
-- seal by prev_hash. hash covers all of it (see ledger/seal.go).
CREATE TABLE ledger_seals (
    tenant_id    UUID        NOT NULL,
    id           UUID        NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end   TIMESTAMPTZ NOT NULL,
    entry_count  BIGINT      NOT NULL CHECK (entry_count > 0),
    totals       JSONB       NOT NULL,
    merkle_root  BYTEA       NOT NULL CHECK (length(merkle_root) = 32),
    prev_hash    BYTEA       NOT NULL CHECK (length(prev_hash) = 32),
    hash         BYTEA       NOT NULL CHECK (length(hash) = 32),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT ledger_seals_period CHECK (period_end > period_start),
    CONSTRAINT ledger_seals_period_key UNIQUE (tenant_id, period_start),
    -- One successor per seal: the chain cannot fork.
    CONSTRAINT ledger_seals_chain_key UNIQUE (tenant_id, prev_hash)
);
