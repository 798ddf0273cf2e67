-- Question: what were the top N levels of a symbol's order book at time T?
-- From market.book_updates: the last snapshot at or before T, then every update after it up
-- to T; each price level's newest size wins (by exchange time, then update id, an update
-- after a snapshot row of the same time), removed levels (size 0) are dropped. A symbol
-- with no snapshot before T has no book (Binance needs its REST snapshot first).
-- snapshot_ts says which snapshot the book was rebuilt from.
-- param venue String = binance: venue, as in market.book_updates
-- param symbol String = BTC-USDT: normalized symbol
-- param at String = now: time T in UTC ('2022-05-13 16:27:30.5' or ISO 8601); not a time: now
-- param levels UInt32 = 10: levels per side
WITH
    ifNull(parseDateTime64BestEffortOrNull({at:String}, 6, 'UTC'), now64(6, 'UTC')) AS t,
    (
        SELECT (max(exchange_ts), argMax(update_id, exchange_ts))
        FROM market.book_updates
        WHERE venue = {venue:String} AND symbol = {symbol:String} AND is_snapshot = 1
            AND exchange_ts <= ifNull(parseDateTime64BestEffortOrNull({at:String}, 6, 'UTC'), now64(6, 'UTC'))
    ) AS snapshot
SELECT
    side,
    row_number() OVER (PARTITION BY side ORDER BY if(side = 'bid', -price, price)) AS level,
    price,
    amount,
    native_amount,
    last_update,
    snapshot.1 AS snapshot_ts
FROM
(
    SELECT
        side,
        price,
        argMax(amount, (exchange_ts, update_id, 1 - is_snapshot, received_ts)) AS amount,
        argMax(native_amount, (exchange_ts, update_id, 1 - is_snapshot, received_ts)) AS native_amount,
        max(exchange_ts) AS last_update
    FROM market.book_updates FINAL
    WHERE venue = {venue:String} AND symbol = {symbol:String}
        AND snapshot.1 > toDateTime64(0, 6, 'UTC')
        AND exchange_ts >= snapshot.1 AND exchange_ts <= t
        AND (is_snapshot = 0 OR exchange_ts = snapshot.1)
        AND (is_snapshot = 1 OR update_id = 0 OR update_id > snapshot.2)
    GROUP BY side, price
    HAVING amount > 0
)
ORDER BY side, level
LIMIT {levels:UInt32} BY side
