-- requires: regions
-- CockroachDB only, on a multi-region database, like 0019_multi_region:
-- disputes belong to their tenant and live in its home region, beside its
-- payments.
ALTER TABLE disputes ADD COLUMN crdb_region crdb_internal_region NOT VISIBLE NOT NULL DEFAULT default_to_database_primary_region(gateway_region())::crdb_internal_region;
ALTER TABLE disputes SET LOCALITY REGIONAL BY ROW AS crdb_region;
