-- processor_account records the processor account a payment was made on:
-- 'platform' (the platform's processor) or 'tenant' (the tenant's own
-- Stripe account). Captures, cancels, refunds and lookups go to that
-- account, which holds the charge, even after the tenant set or removed
-- its own account. NULL for payments made before it was recorded: they
-- use the tenant's current account, as before.
ALTER TABLE payments ADD COLUMN processor_account TEXT CHECK (processor_account IN ('platform', 'tenant'));
