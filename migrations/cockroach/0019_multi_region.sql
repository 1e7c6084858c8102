-- requires: regions
-- CockroachDB only, and only on a multi-region database (the runner skips
-- this file until `SHOW REGIONS FROM DATABASE` lists a region; add the
-- regions first: ALTER DATABASE payments PRIMARY REGION "eu-central";
-- ALTER DATABASE payments ADD REGION "us-east"; ..., named as the shards'
-- regions in PAYMENTS_SHARDS).

-- The directory is read from every region before the tenant is known:
-- GLOBAL tables answer reads locally everywhere and pay on writes, which
-- are rare (a new tenant, a new key).
ALTER TABLE tenant_directory SET LOCALITY GLOBAL;
ALTER TABLE api_keys SET LOCALITY GLOBAL;

-- Tenant-scoped tables are REGIONAL BY ROW: each row lives in crdb_region.
-- Its default is the gateway's region, and the shard router sends every
-- statement of a tenant to the shard of the tenant's home region, whose
-- DSN names that region's nodes: crdb_region is the tenant's home region.
ALTER TABLE tenants ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE tenants SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE payments ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE payments SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE refunds ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE refunds SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE events ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE events SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE event_outbox ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE event_outbox SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE idempotency_keys ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE idempotency_keys SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE ledger_transactions ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE ledger_transactions SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE ledger_entries ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE ledger_entries SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE processor_events ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE processor_events SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE processor_accounts ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE processor_accounts SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE webhook_endpoints ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE webhook_endpoints SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE webhook_deliveries ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE webhook_deliveries SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE webhook_attempts ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE webhook_attempts SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE risk_rules ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE risk_rules SET LOCALITY REGIONAL BY ROW AS crdb_region;

-- IDs are UUIDv7, ordered by time: within a busy tenant every insert would
-- land on the last range of its primary key. Hash-sharded primary keys
-- spread them over 16 buckets; point reads by ID are unchanged.
ALTER TABLE payments ALTER PRIMARY KEY USING COLUMNS (tenant_id, id) USING HASH WITH (bucket_count = 16);
ALTER TABLE refunds ALTER PRIMARY KEY USING COLUMNS (tenant_id, id) USING HASH WITH (bucket_count = 16);
ALTER TABLE events ALTER PRIMARY KEY USING COLUMNS (tenant_id, id) USING HASH WITH (bucket_count = 16);
ALTER TABLE event_outbox ALTER PRIMARY KEY USING COLUMNS (tenant_id, event_id) USING HASH WITH (bucket_count = 16);
ALTER TABLE ledger_transactions ALTER PRIMARY KEY USING COLUMNS (tenant_id, id) USING HASH WITH (bucket_count = 16);
ALTER TABLE webhook_deliveries ALTER PRIMARY KEY USING COLUMNS (tenant_id, id) USING HASH WITH (bucket_count = 16);

-- Indexes that start with a time are written at their end by every tenant
-- at once: hash-sharded too. (The scans that read them, oldest first,
-- read every bucket, which CockroachDB does in one ordered merge.)
DROP INDEX payments@payments_by_operation;
CREATE INDEX payments_by_operation ON payments (operation_started_at) USING HASH WITH (bucket_count = 16) WHERE operation IS NOT NULL;
DROP INDEX payments@payments_pending;
CREATE INDEX payments_pending ON payments (updated_at) USING HASH WITH (bucket_count = 16) WHERE status = 'pending';
DROP INDEX refunds@refunds_pending;
CREATE INDEX refunds_pending ON refunds (updated_at) USING HASH WITH (bucket_count = 16) WHERE status = 'pending';
DROP INDEX idempotency_keys@idempotency_keys_by_created;
CREATE INDEX idempotency_keys_by_created ON idempotency_keys (created_at) USING HASH WITH (bucket_count = 16);
DROP INDEX event_outbox@event_outbox_by_created;
CREATE INDEX event_outbox_by_created ON event_outbox (created_at) USING HASH WITH (bucket_count = 16);
DROP INDEX webhook_deliveries@webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) USING HASH WITH (bucket_count = 16) WHERE status = 'pending';
DROP INDEX webhook_deliveries@webhook_deliveries_undelivered;
CREATE INDEX webhook_deliveries_undelivered ON webhook_deliveries (event_created_at) USING HASH WITH (bucket_count = 16) WHERE status = 'pending';
