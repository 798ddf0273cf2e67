-- Question: what were the 1-minute open/high/low/close/volume candles per venue and symbol?
-- Reads market.ohlcv_1m: one candle per venue, symbol and closed minute, built from the
-- distinct trades (feedhouse/candles.py; a duplicate that reached market.trades is counted
-- once), rebuilt when late trades arrive; FINAL reads the newest build of each minute.
-- The window is counted back from the newest candle, so recorded sessions and live data
-- read the same way.
-- param window_minutes UInt32 = 60: minutes back from the newest candle
SELECT
    venue,
    symbol,
    minute,
    open,
    high,
    low,
    close,
    volume,
    notional / nullIf(volume, 0) AS vwap,
    trades
FROM market.ohlcv_1m FINAL
WHERE minute > (SELECT max(minute) FROM market.ohlcv_1m) - toIntervalMinute({window_minutes:UInt32})
ORDER BY venue, symbol, minute
