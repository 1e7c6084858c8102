-- requires: regions
-- CockroachDB only, on a multi-region database, like 0019_multi_region:
-- payouts and the tenants' payout accounts belong to their tenant and live
-- in its home region.
ALTER TABLE payouts ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE payouts SET LOCALITY REGIONAL BY ROW AS crdb_region;
ALTER TABLE payout_accounts ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE payout_accounts SET LOCALITY REGIONAL BY ROW AS crdb_region;
