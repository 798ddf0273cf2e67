-- Window read for the market_book_updates suite (quality/suites/market_book_updates.json):
-- one row per book event (a snapshot or an update frame: its venue, symbol, time and
-- update id), its level rows summed up: the lowest price and size (a negative size is
-- invalid), sides other than bid/ask, a snapshot's best bid and best ask (a synced book:
-- crossed if bid >= ask), and a sequence break: an update whose prev_update_id is not the
-- update_id of the symbol's event before it in the window (venues without ids: 0; the first
-- update after a snapshot may overlap it). Without FINAL; a redelivered event is one row.
-- The book at the window's end: on each symbol's last event of the window, end_best_bid and
-- end_best_ask of its book rebuilt at the window's end from its last snapshot and the
-- updates after it (sql/books/book_levels.sql, as analytics book_at rebuilds it); NULL when
-- the symbol has no snapshot from book_since (quality.book_rebuild_minutes before the
-- window's start) to the window's end, or a sequence break in the window after that
-- snapshot (an unsynced book, which the live path resyncs; the break is its own WARN).
WITH
    {end:DateTime64(6, 'UTC')} - toIntervalMicrosecond(1) AS book_t,
    {book_since:DateTime64(6, 'UTC')} AS book_since,
    {venue:String} AS book_venue,
    '' AS book_symbol
SELECT
    nullIf(venue, '') AS venue,
    nullIf(symbol, '') AS symbol,
    exchange_ts,
    update_id,
    is_snapshot,
    levels,
    min_price,
    min_amount,
    bad_sides,
    best_bid,
    best_ask,
    sequence_break,
    if(last_event AND breaks_after_snapshot = 0, end_bid, NULL) AS end_best_bid,
    if(last_event AND breaks_after_snapshot = 0, end_ask, NULL) AS end_best_ask
FROM
(
    SELECT
        events.*,
        row_number() OVER (PARTITION BY events.venue, events.symbol
                           ORDER BY events.exchange_ts DESC, events.update_id DESC) = 1 AS last_event,
        countIf(events.sequence_break = 1 AND events.exchange_ts > book.snapshot_ts)
            OVER (PARTITION BY events.venue, events.symbol) AS breaks_after_snapshot,
        book.end_bid AS end_bid,
        book.end_ask AS end_ask
    FROM
    (
        SELECT
            *,
            toUInt8(is_snapshot = 0 AND update_id > 0 AND prev_update_id > 0 AND previous_id > 0
                    AND previous_snapshot = 0 AND prev_update_id != previous_id) AS sequence_break
        FROM
        (
            SELECT
                *,
                lagInFrame(update_id) OVER w AS previous_id,
                lagInFrame(is_snapshot) OVER w AS previous_snapshot
            FROM
            (
                SELECT
                    venue,
                    symbol,
                    exchange_ts,
                    update_id,
                    prev_update_id,
                    is_snapshot,
                    count() AS levels,
                    min(price) AS min_price,
                    min(amount) AS min_amount,
                    countIf(side NOT IN ('bid', 'ask')) AS bad_sides,
                    if(is_snapshot = 1, maxIfOrNull(price, side = 'bid' AND amount > 0), NULL) AS best_bid,
                    if(is_snapshot = 1, minIfOrNull(price, side = 'ask' AND amount > 0), NULL) AS best_ask
                FROM market.book_updates
                WHERE exchange_ts >= {start:DateTime64(6, 'UTC')} AND exchange_ts < {end:DateTime64(6, 'UTC')}
                  AND ({venue:String} = '' OR venue = {venue:String})
                GROUP BY venue, symbol, exchange_ts, update_id, prev_update_id, is_snapshot
            )
            WINDOW w AS (PARTITION BY venue, symbol ORDER BY exchange_ts, update_id, is_snapshot DESC
                         ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
        )
    ) AS events
    LEFT JOIN
    (
        SELECT venue, symbol, maxIfOrNull(price, side = 'bid') AS end_bid,
            minIfOrNull(price, side = 'ask') AS end_ask, any(snapshot_ts) AS snapshot_ts
        FROM
        (
            {{ include books/book_levels.sql }}
        )
        GROUP BY venue, symbol
    ) AS book ON events.venue = book.venue AND events.symbol = book.symbol
)
ORDER BY venue, symbol, exchange_ts, update_id
