-- requires: regions
-- CockroachDB only, on a multi-region database, like 0019_multi_region:
-- the tables added after it are placed the same way.

-- The ledger's running totals, checkpoints, closings and seals belong to
-- their tenant and live in its home region, beside its entries.
ALTER TABLE ledger_balance_slots ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE ledger_balance_slots SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE ledger_checkpoints ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE ledger_checkpoints SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE ledger_closings ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE ledger_closings SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE ledger_seals ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE ledger_seals SET LOCALITY REGIONAL BY ROW AS crdb_region;

-- The read cache's bypass is read by every process of every region every
-- 250 ms and written only while a process cannot reach Redis: GLOBAL, so
-- the reads are local everywhere.
ALTER TABLE cache_bypass SET LOCALITY GLOBAL;
