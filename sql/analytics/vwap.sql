-- Question: what was the volume-weighted average price (VWAP) per venue and symbol?
-- VWAP = sum(price * amount) / sum(amount) over the window, from market.trades FINAL so a
-- duplicate not yet collapsed by ReplacingMergeTree cannot weigh twice. Also shows the
-- plain average price and last price, to see how far volume pulls the VWAP.
-- param window_minutes UInt32 = 60: minutes back from the newest trade
SELECT
    venue,
    symbol,
    count() AS trades,
    sum(amount) AS volume,
    sum(price * amount) / nullIf(sum(amount), 0) AS vwap,
    avg(price) AS avg_price,
    argMax(price, exchange_ts) AS last_price,
    min(exchange_ts) AS first_trade,
    max(exchange_ts) AS last_trade
FROM market.trades FINAL
WHERE exchange_ts > (SELECT max(exchange_ts) FROM market.trades) - toIntervalMinute({window_minutes:UInt32})
GROUP BY venue, symbol
ORDER BY symbol, venue
