-- Shared piece (not a query of its own): the order book of every symbol at time book_t, as
-- analytics book_at and the market_book_updates quality suite rebuild it. Included by
-- `{{ include books/book_levels.sql }}` (feedhouse.core.paths.sql_text) inside a query that
-- defines the WITH aliases book_t and book_since (DateTime64(6, 'UTC'): snapshots older than
-- book_since are not looked at), book_venue and book_symbol ('' = every venue / symbol).
-- Per symbol: its last snapshot in [book_since, book_t], then every update after it up to
-- book_t; each price level's newest size wins (by exchange time, then update id, an update
-- after a snapshot row of the same time), removed levels (size 0) are dropped. An update id
-- at or below the snapshot's is already in it. A symbol with no snapshot before book_t has
-- no book. One row per (venue, symbol, side, price); snapshot_ts says which snapshot.
SELECT
    venue,
    symbol,
    side,
    price,
    argMax(amount, (exchange_ts, update_id, 1 - is_snapshot, received_ts)) AS amount,
    argMax(native_amount, (exchange_ts, update_id, 1 - is_snapshot, received_ts)) AS native_amount,
    max(exchange_ts) AS last_update,
    any(snapshot.snapshot_ts) AS snapshot_ts
FROM market.book_updates AS levels FINAL
INNER JOIN
(
    SELECT venue, symbol, max(exchange_ts) AS snapshot_ts, argMax(update_id, exchange_ts) AS snapshot_id
    FROM market.book_updates
    WHERE is_snapshot = 1 AND exchange_ts >= book_since AND exchange_ts <= book_t
        AND (book_venue = '' OR venue = book_venue) AND (book_symbol = '' OR symbol = book_symbol)
    GROUP BY venue, symbol
) AS snapshot ON levels.venue = snapshot.venue AND levels.symbol = snapshot.symbol
WHERE (book_venue = '' OR levels.venue = book_venue) AND (book_symbol = '' OR levels.symbol = book_symbol)
    AND levels.exchange_ts >= book_since
    AND levels.exchange_ts >= snapshot.snapshot_ts AND levels.exchange_ts <= book_t
    AND (levels.is_snapshot = 0 OR levels.exchange_ts = snapshot.snapshot_ts)
    AND (levels.is_snapshot = 1 OR levels.update_id = 0 OR levels.update_id > snapshot.snapshot_id)
GROUP BY venue, symbol, side, price
HAVING amount > 0
