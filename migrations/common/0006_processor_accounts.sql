-- processor_accounts holds a tenant's own processor account, on the
-- tenant's shard with the rest of its data: its Stripe secret key and its
-- webhook signing secrets (newline-separated, the current one first),
-- each sealed with AES-256-GCM under PAYMENTS_ENCRYPTION_KEY and bound to
-- the tenant and the field (package secretbox). Only the key's last four
-- characters and its mode are kept in clear, for the admin API's answer.
CREATE TABLE processor_accounts (
    tenant_id               UUID        NOT NULL,
    processor               TEXT        NOT NULL CHECK (processor IN ('stripe')),
    secret_key_sealed       BYTEA       NOT NULL CHECK (length(secret_key_sealed) BETWEEN 33 AND 4096),
    secret_key_last4        TEXT        NOT NULL CHECK (length(secret_key_last4) = 4),
    livemode                BOOLEAN     NOT NULL,
    webhook_secrets_sealed  BYTEA       NOT NULL CHECK (length(webhook_secrets_sealed) BETWEEN 33 AND 4096),
    webhook_secrets_count   INT         NOT NULL CHECK (webhook_secrets_count BETWEEN 1 AND 3),
    version                 INT         NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, processor)
);
