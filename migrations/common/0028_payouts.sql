-- Payouts (issue 14): money leaving a merchant's balance for its bank or
-- its connected account. A payout is written in the same transaction as
-- its ledger posting (merchant_balance -> payouts_in_transit) and its
-- payout.created event; every later change is a version-guarded UPDATE.
-- sending_since is set while the processor call that sends the payout is
-- in flight (recorded before the call, cleared with its outcome), so a
-- crash in between leaves a row the payout driver finds and finishes by
-- repeating the same idempotent call.
CREATE TABLE payouts (
    tenant_id       UUID        NOT NULL,
    id              UUID        NOT NULL,
    amount          BIGINT      NOT NULL CHECK (amount > 0),
    currency        TEXT        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
    description     TEXT,
    metadata        JSONB       NOT NULL DEFAULT '{}',
    -- processor names the payout adapter that moves it (sandbox, stripe);
    -- destination is where it goes there (a Stripe connected account).
    processor       TEXT        NOT NULL,
    destination     TEXT,
    transfer_ref    TEXT,
    processor_ref   TEXT,
    sending_since   TIMESTAMPTZ,
    -- sent_at is when the processor accepted the payout.
    sent_at         TIMESTAMPTZ,
    failure_code    TEXT,
    failure_message TEXT,
    version         INT         NOT NULL CHECK (version > 0),
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT payouts_sending CHECK (sending_since IS NULL OR status = 'pending'),
    CONSTRAINT payouts_failure CHECK ((status = 'failed') = (failure_code IS NOT NULL))
);
-- The payout driver's scan: open payouts by age, on every shard. Only
-- payouts write it; the payment path never touches these pages.
CREATE INDEX payouts_open ON payouts (status, updated_at) WHERE status IN ('pending', 'in_transit');

-- payout_accounts holds, per tenant, where its payouts go at the platform's
-- Stripe account: the connected account (acct_...) that receives a
-- Transfer and then pays out to the tenant's bank. It lives on the tenant's
-- shard, beside the tenant's payouts.
CREATE TABLE payout_accounts (
    tenant_id      UUID        NOT NULL PRIMARY KEY,
    stripe_account TEXT        NOT NULL CHECK (stripe_account ~ '^acct_[A-Za-z0-9]{1,64}$'),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
