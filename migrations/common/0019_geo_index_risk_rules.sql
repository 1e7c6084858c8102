-- The database side of the geo index: when a window of the Redis GEO index
-- is missing, nearby searches read payments by geohash-prefix ranges of
-- this index (created_at rides along to filter the window without a heap
-- read).
CREATE INDEX payments_by_geohash ON payments (tenant_id, geohash, created_at) WHERE geohash IS NOT NULL;

-- The location risk rule that blocked a payment or sent it to review.
ALTER TABLE payments ADD COLUMN risk_rule UUID;

-- A tenant's location risk rules: velocity (more than max_payments in one
-- geohash cell within window_seconds) and impossible_travel (one customer
-- at two places further apart than speed_kmh_max allows).
CREATE TABLE risk_rules (
    tenant_id         UUID        NOT NULL,
    id                UUID        NOT NULL,
    kind              TEXT        NOT NULL CHECK (kind IN ('velocity', 'impossible_travel')),
    action            TEXT        NOT NULL CHECK (action IN ('block', 'review')),
    fail_closed       BOOLEAN     NOT NULL DEFAULT false,
    geohash_precision INT         CHECK (geohash_precision BETWEEN 4 AND 7),
    max_payments      INT         CHECK (max_payments BETWEEN 1 AND 100000),
    window_seconds    INT         CHECK (window_seconds BETWEEN 1 AND 86400),
    speed_kmh_max     INT         CHECK (speed_kmh_max BETWEEN 1 AND 100000),
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT risk_rules_velocity_fields CHECK ((kind = 'velocity') = (geohash_precision IS NOT NULL AND max_payments IS NOT NULL AND window_seconds IS NOT NULL)),
    CONSTRAINT risk_rules_travel_fields CHECK ((kind = 'impossible_travel') = (speed_kmh_max IS NOT NULL))
);
