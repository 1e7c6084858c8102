-- Foundation: the tenant directory, API keys and tenant accounts.
-- Common set: only SQL that PostgreSQL 15 and CockroachDB both accept.

-- tenant_directory maps every tenant to the shard that holds its data. It is
-- read on the directory shard (the default shard) only; other shards carry
-- the table empty so that every shard has one schema.
CREATE TABLE tenant_directory (
    tenant_id  UUID        NOT NULL PRIMARY KEY,
    shard      TEXT        NOT NULL CHECK (length(shard) BETWEEN 1 AND 63),
    region     TEXT        NOT NULL CHECK (length(region) BETWEEN 1 AND 63),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- api_keys lives on the directory shard too: authentication looks a key up
-- by its hash before it knows the tenant.
CREATE TABLE api_keys (
    tenant_id    UUID        NOT NULL,
    id           UUID        NOT NULL,
    key_hash     BYTEA       NOT NULL,
    display      TEXT        NOT NULL,
    mode         TEXT        NOT NULL CHECK (mode IN ('test', 'live')),
    read_only    BOOLEAN     NOT NULL DEFAULT false,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at   TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT api_keys_hash_len CHECK (length(key_hash) = 32)
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);

-- tenants holds the account itself on the tenant's own shard.
CREATE TABLE tenants (
    tenant_id             UUID        NOT NULL PRIMARY KEY,
    name                  TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    region                TEXT        NOT NULL CHECK (length(region) BETWEEN 1 AND 63),
    shard                 TEXT        NOT NULL CHECK (length(shard) BETWEEN 1 AND 63),
    status                TEXT        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    rate_limit_per_second INT         NOT NULL CHECK (rate_limit_per_second BETWEEN 1 AND 1000000),
    rate_limit_burst      INT         NOT NULL CHECK (rate_limit_burst BETWEEN 1 AND 1000000),
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
