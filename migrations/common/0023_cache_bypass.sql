-- cache_bypass holds one row per process that changed payments while it
-- could not reach Redis to invalidate their cache entries. While any row
-- exists, no process reads or fills the payment read cache; the holder
-- deletes its row once Redis answers again and it has deleted the entries
-- of what it changed. A row past expires_at belongs to a holder that
-- stopped renewing it (it died): another process empties the cache, then
-- deletes the row. It lives on the directory shard.
CREATE TABLE cache_bypass (
    holder     TEXT        NOT NULL PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
