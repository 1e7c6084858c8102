-- Each secret is stored either in the clear (no encryption key configured)
-- or sealed, never both and never neither.
ALTER TABLE webhook_endpoints ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_previous;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_secret_once CHECK ((secret IS NULL) <> (secret_sealed IS NULL));
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_previous_once CHECK (
    (previous_secret IS NULL OR previous_secret_sealed IS NULL)
    AND ((previous_secret IS NULL AND previous_secret_sealed IS NULL) = (previous_secret_expires_at IS NULL)));
