-- Disputes (chargebacks): one row per processor dispute of a payment, on
-- the payment's tenant's shard. A dispute changes only from the version it
-- was read at; processor notifications move its status forward by rank
-- (see payments/dispute.go), never out of won or lost.
CREATE TABLE disputes (
    tenant_id             UUID        NOT NULL,
    id                    UUID        NOT NULL,
    payment_id            UUID        NOT NULL,
    processor             TEXT        NOT NULL,
    processor_dispute_id  TEXT        NOT NULL CHECK (length(processor_dispute_id) BETWEEN 1 AND 255),
    amount                BIGINT      NOT NULL CHECK (amount > 0),
    currency              TEXT        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    reason                TEXT        NOT NULL CHECK (length(reason) BETWEEN 1 AND 64),
    status                TEXT        NOT NULL CHECK (status IN ('warning_needs_response', 'needs_response', 'under_review', 'won', 'lost')),
    evidence_due_by       TIMESTAMPTZ,
    evidence              JSONB       NOT NULL DEFAULT '{}',
    evidence_submitted_at TIMESTAMPTZ,
    operation             TEXT        CHECK (operation IN ('submit_evidence', 'close')),
    operation_started_at  TIMESTAMPTZ,
    funds_withdrawn       BOOLEAN     NOT NULL DEFAULT false,
    funds_reinstated      BOOLEAN     NOT NULL DEFAULT false,
    amount_withdrawn      BIGINT      NOT NULL DEFAULT 0 CHECK (amount_withdrawn >= 0),
    fee                   BIGINT      NOT NULL DEFAULT 0 CHECK (fee >= 0),
    amount_reinstated     BIGINT      NOT NULL DEFAULT 0 CHECK (amount_reinstated >= 0),
    -- The processor's time of the newest notification applied (Stripe's
    -- event created): of two notifications of the same status rank, the
    -- older one changes nothing.
    processor_updated_at  TIMESTAMPTZ,
    version               INT         NOT NULL CHECK (version >= 1),
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT disputes_processor_key UNIQUE (tenant_id, processor, processor_dispute_id),
    CONSTRAINT disputes_operation_pair CHECK ((operation IS NULL) = (operation_started_at IS NULL)),
    CONSTRAINT disputes_reinstated_bound CHECK (amount_reinstated <= amount_withdrawn)
);
CREATE INDEX disputes_by_payment ON disputes (tenant_id, payment_id, id);
CREATE INDEX disputes_by_status ON disputes (tenant_id, status, id);

-- A payment with a dispute says so; refunds of it are refused.
ALTER TABLE payments ADD COLUMN disputed BOOLEAN NOT NULL DEFAULT false;

-- The ledger books a dispute's withdrawal (type dispute) and its
-- reinstatement (type dispute_reversal), each once per dispute (the
-- source key). The column checks are replaced by named ones that list the
-- new values; PostgreSQL and CockroachDB name an unnamed column check
-- differently, so both names are dropped if they exist.
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_type_check;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS check_type;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS ledger_transactions_source_type_check;
ALTER TABLE ledger_transactions DROP CONSTRAINT IF EXISTS check_source_type;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_type_known
    CHECK (type IN ('charge', 'refund', 'adjustment', 'dispute', 'dispute_reversal'));
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_source_type_known
    CHECK (source_type IN ('payment', 'refund', 'dispute'));
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_dispute
    CHECK (type <> 'dispute' OR (source_type = 'dispute' AND amount < 0 AND payment_id IS NOT NULL));
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_dispute_reversal
    CHECK (type <> 'dispute_reversal' OR (source_type = 'dispute' AND amount > 0 AND fee = 0 AND payment_id IS NOT NULL));
