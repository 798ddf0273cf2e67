-- Question: how far apart are venues' prices for the same symbol, minute by minute?
-- For every normalized symbol (BASE-QUOTE) and minute traded on at least two venues: the
-- spread between the highest and lowest venue close (absolute and in basis points of the
-- mean close), the standard deviation across venues, and which venue was highest/lowest.
-- Built on the 1-minute candles (market.ohlcv_1m).
-- param window_minutes UInt32 = 60: minutes back from the newest candle
-- param min_venues UInt8 = 2: only minutes with at least this many venues
SELECT
    symbol,
    minute,
    count() AS venues,
    min(close) AS min_close,
    max(close) AS max_close,
    max(close) - min(close) AS range_abs,
    (max(close) - min(close)) / avg(close) * 10000 AS range_bps,
    stddevPop(close) / avg(close) * 10000 AS stddev_bps,
    argMax(venue, close) AS highest_venue,
    argMin(venue, close) AS lowest_venue
FROM
(
    SELECT venue, symbol, minute, close
    FROM market.ohlcv_1m FINAL
    WHERE minute > (SELECT max(minute) FROM market.ohlcv_1m) - toIntervalMinute({window_minutes:UInt32})
)
GROUP BY symbol, minute
HAVING venues >= {min_venues:UInt8}
ORDER BY symbol, minute
