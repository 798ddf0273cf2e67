-- Window read for the ops_ingest_ledger suite (quality/suites/ops_ingest_ledger.json).
-- The ledger is a SummingMergeTree: always sum() per feed and minute. Counters are cast
-- to Int64 so one that wrapped below zero (UInt64 underflow) shows as negative. Only
-- closed minutes (before {settled}) are read: later ones may still have records in flight.
-- Invariants (feedhouse/ledger.py): received = with_records + invalid + ignored;
-- parsed = duplicates + inserted + rejected + (buffered - replayed).
-- `minute` is re-typed as DateTime64 because Arrow carries a plain DateTime as an integer.
SELECT
    nullIf(feed_name, '') AS feed,
    toDateTime64(m, 0, 'UTC') AS minute,
    received, with_records, invalid, ignored,
    parsed, duplicates, inserted, rejected, buffered, replayed,
    received - (with_records + invalid + ignored) AS message_imbalance,
    parsed - (duplicates + inserted + rejected + buffered - replayed) AS record_imbalance
FROM (
    SELECT
        feed AS feed_name,
        minute AS m,
        toInt64(sum(received)) AS received,
        toInt64(sum(with_records)) AS with_records,
        toInt64(sum(invalid)) AS invalid,
        toInt64(sum(ignored)) AS ignored,
        toInt64(sum(parsed)) AS parsed,
        toInt64(sum(duplicates)) AS duplicates,
        toInt64(sum(inserted)) AS inserted,
        toInt64(sum(rejected)) AS rejected,
        toInt64(sum(buffered)) AS buffered,
        toInt64(sum(replayed)) AS replayed
    FROM ops.ingest_ledger
    WHERE minute >= {start:DateTime64(6, 'UTC')} AND minute < {end:DateTime64(6, 'UTC')}
      AND minute < {settled:DateTime64(6, 'UTC')}
    GROUP BY feed_name, m
)
ORDER BY feed, minute
