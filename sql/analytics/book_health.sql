-- Question: how healthy are the stored order books per venue: updates, snapshots, sequence gaps and checksum failures?
-- From market.book_updates: level updates, book events (one per venue, symbol, time and
-- update id), snapshots (first subscriptions and resyncs), and sequence gaps where the
-- venue sends ids (an update whose prev_update_id is beyond the previous event's
-- update_id: `missing_ids` counts the ids skipped). From ops.feed_gaps: the breaks the
-- ingest recorded for books (reason starting with 'sequence gap' or 'checksum mismatch').
-- param window_minutes UInt32 = 1440: minutes back from the newest book update
WITH
events AS
(
    SELECT venue, symbol, exchange_ts, update_id, any(prev_update_id) AS prev,
        max(is_snapshot) AS snapshot, count() AS levels
    FROM market.book_updates FINAL
    WHERE exchange_ts > (SELECT max(exchange_ts) FROM market.book_updates) - toIntervalMinute({window_minutes:UInt32})
    GROUP BY venue, symbol, exchange_ts, update_id
),
sequenced AS
(
    SELECT venue, symbol, update_id, prev, snapshot,
        lagInFrame(update_id) OVER (PARTITION BY venue, symbol ORDER BY exchange_ts, update_id
            ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS last_id
    FROM events
    WHERE update_id > 0
),
gaps AS
(
    SELECT venue, countIf(snapshot = 0 AND last_id > 0 AND prev > last_id) AS sequence_gaps,
        sumIf(prev - last_id, snapshot = 0 AND last_id > 0 AND prev > last_id) AS missing_ids
    FROM sequenced
    GROUP BY venue
),
recorded AS
(
    SELECT venue, countIf(startsWith(reason, 'sequence gap')) AS recorded_gaps,
        countIf(startsWith(reason, 'checksum mismatch')) AS checksum_mismatches
    FROM ops.feed_gaps
    WHERE gap_start > (SELECT max(exchange_ts) FROM market.book_updates) - toIntervalMinute({window_minutes:UInt32})
    GROUP BY venue
)
SELECT
    e.venue AS venue,
    uniqExact(e.symbol) AS symbols,
    sum(e.levels) AS level_updates,
    count() AS book_events,
    countIf(e.snapshot = 1) AS snapshots,
    any(g.sequence_gaps) AS sequence_gaps,
    any(g.missing_ids) AS missing_ids,
    any(r.recorded_gaps) AS recorded_gaps,
    any(r.checksum_mismatches) AS checksum_mismatches
FROM events AS e
LEFT JOIN gaps AS g ON g.venue = e.venue
LEFT JOIN recorded AS r ON r.venue = e.venue
GROUP BY e.venue
ORDER BY e.venue
