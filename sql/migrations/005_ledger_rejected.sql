-- Ledger: rows ClickHouse refused permanently (sent to the dead letter), so invariant (2)
-- closes: parsed = duplicates + inserted + rejected + (buffered - replayed).
-- `inserted` counts every row that reached ClickHouse, replayed ones included.
ALTER TABLE ops.ingest_ledger ADD COLUMN IF NOT EXISTS rejected UInt64 DEFAULT 0 COMMENT 'records ClickHouse refused permanently (sent to the dead letter)' AFTER inserted;
ALTER TABLE ops.ingest_ledger COMMENT COLUMN inserted 'records that reached ClickHouse (direct inserts and buffer replays)';
