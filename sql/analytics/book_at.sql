-- Question: what were the top N levels of a symbol's order book at time T?
-- From market.book_updates: the last snapshot at or before T, then every update after it up
-- to T; each price level's newest size wins (by exchange time, then update id, an update
-- after a snapshot row of the same time), removed levels (size 0) are dropped. A symbol
-- with no snapshot before T has no book (Binance needs its REST snapshot first). The
-- rebuild is sql/books/book_levels.sql, shared with the market_book_updates quality suite.
-- snapshot_ts says which snapshot the book was rebuilt from.
-- param venue String = binance: venue, as in market.book_updates
-- param symbol String = BTC-USDT: normalized symbol
-- param at String = now: time T in UTC ('2022-05-13 16:27:30.5' or ISO 8601); not a time: now
-- param levels UInt32 = 10: levels per side
WITH
    ifNull(parseDateTime64BestEffortOrNull({at:String}, 6, 'UTC'), now64(6, 'UTC')) AS book_t,
    toDateTime64(0, 6, 'UTC') AS book_since,
    {venue:String} AS book_venue,
    {symbol:String} AS book_symbol
SELECT
    side,
    row_number() OVER (PARTITION BY side ORDER BY if(side = 'bid', -price, price)) AS level,
    price,
    amount,
    native_amount,
    last_update,
    snapshot_ts
FROM
(
    {{ include books/book_levels.sql }}
)
WHERE venue = {venue:String} AND symbol = {symbol:String}
ORDER BY side, level
LIMIT {levels:UInt32} BY side
