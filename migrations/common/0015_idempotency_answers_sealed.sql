-- response_sealed marks a stored answer sealed with AES-256-GCM under
-- PAYMENTS_ENCRYPTION_KEY (package secretbox), bound to its tenant and key:
-- the answers that show a webhook endpoint's signing secret (its creation
-- and its rotation) are sealed like the secret itself, so a copy of the
-- database holds neither in the clear.
ALTER TABLE idempotency_keys ADD COLUMN response_sealed BOOLEAN NOT NULL DEFAULT false;
