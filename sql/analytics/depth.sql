-- Question: how much size rested within x basis points of the mid price, per side and minute?
-- From market.book_updates: the book at the end of each minute (the last snapshot before it
-- and the updates after that snapshot, as book_at rebuilds it), its best bid/ask and mid
-- ((best bid + best ask) / 2), and the BASE size within `bps` of the mid on each side.
-- Minutes before the first snapshot have no book and no row; a crossed book (best bid >=
-- best ask) is flagged.
-- param venue String = binance: venue, as in market.book_updates
-- param symbol String = BTC-USDT: normalized symbol
-- param bps Float64 = 10: band around the mid price, in basis points
-- param window_minutes UInt32 = 60: minutes back from the newest update
WITH
rows AS
(
    SELECT exchange_ts, is_snapshot, side, price, amount, update_id, received_ts,
        max(if(is_snapshot = 1, exchange_ts, toDateTime64(0, 6, 'UTC')))
            OVER (ORDER BY exchange_ts, is_snapshot DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS epoch
    FROM market.book_updates FINAL
    WHERE venue = {venue:String} AND symbol = {symbol:String}
),
minutes AS
(
    SELECT toStartOfMinute(exchange_ts) + toIntervalMinute(1) AS minute_end, max(epoch) AS active
    FROM rows
    WHERE exchange_ts > (SELECT max(exchange_ts) FROM rows) - toIntervalMinute({window_minutes:UInt32})
    GROUP BY minute_end
    HAVING active > toDateTime64(0, 6, 'UTC')
),
book AS
(
    SELECT m.minute_end AS minute_end, r.side AS side, r.price AS price,
        argMax(r.amount, (r.exchange_ts, r.update_id, 1 - r.is_snapshot, r.received_ts)) AS amount
    FROM minutes AS m
    INNER JOIN rows AS r ON r.epoch = m.active
    WHERE r.exchange_ts < m.minute_end
    GROUP BY minute_end, side, price
    HAVING amount > 0
),
tops AS
(
    SELECT minute_end, maxIf(price, side = 'bid') AS best_bid, minIf(price, side = 'ask') AS best_ask
    FROM book
    GROUP BY minute_end
)
SELECT
    toStartOfMinute(b.minute_end - toIntervalMinute(1)) AS minute,
    t.best_bid AS best_bid,
    t.best_ask AS best_ask,
    (t.best_bid + t.best_ask) / 2 AS mid,
    sumIf(b.amount, b.side = 'bid' AND b.price >= mid * (1 - {bps:Float64} / 10000)) AS bid_depth,
    sumIf(b.amount, b.side = 'ask' AND b.price <= mid * (1 + {bps:Float64} / 10000)) AS ask_depth,
    t.best_bid >= t.best_ask AS crossed
FROM book AS b
INNER JOIN tops AS t ON t.minute_end = b.minute_end
GROUP BY b.minute_end, t.best_bid, t.best_ask
ORDER BY minute
