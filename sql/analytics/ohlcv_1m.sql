-- Question: what were the 1-minute open/high/low/close/volume candles per venue and symbol?
-- Reads market.ohlcv_1m, which the materialized view fills with partial aggregate states
-- (one per insert block); this query merges them: argMinMerge/argMaxMerge for open/close,
-- max/min/sum for the rest. The window is counted back from the newest candle, so recorded
-- sessions and live data read the same way. A duplicate that reached market.trades (the
-- dedup window and insert tokens stop nearly all) stays counted here; vwap.sql reads FINAL.
-- param window_minutes UInt32 = 60: minutes back from the newest candle
SELECT
    venue,
    symbol,
    minute,
    argMinMerge(open) AS open,
    max(high) AS high,
    min(low) AS low,
    argMaxMerge(close) AS close,
    sum(volume) AS volume,
    sum(notional) / nullIf(volume, 0) AS vwap,  -- `volume` is the merged sum above
    sum(trades) AS trades
FROM market.ohlcv_1m
WHERE minute > (SELECT max(minute) FROM market.ohlcv_1m) - toIntervalMinute({window_minutes:UInt32})
GROUP BY venue, symbol, minute
ORDER BY venue, symbol, minute
