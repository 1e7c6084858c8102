-- Signing secrets sealed at rest (AES-256-GCM under PAYMENTS_ENCRYPTION_KEY)
-- when a key is configured. Exactly one of secret and secret_sealed holds
-- an endpoint's secret; the constraints follow in 0008, because CockroachDB
-- refuses constraints on columns added in the same transaction.
ALTER TABLE webhook_endpoints ADD COLUMN secret_sealed BYTEA;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_sealed BYTEA;
