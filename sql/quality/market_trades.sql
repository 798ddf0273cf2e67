-- Window read for the market_trades suite (quality/suites/market_trades.json).
-- Empty strings and epoch-zero times are the ClickHouse spelling of "missing": read as NULL.
-- skew_s: exchange time minus receive time (positive = exchange clock ahead of ours).
-- gap_s: event-time seconds since the venue's previous trade within the window.
-- silence_limit_s: the venue's allowed silence (quality settings, passed as parameters).
SELECT
    nullIf(venue, '') AS venue,
    nullIf(symbol, '') AS symbol,
    nullIf(trade_id, '') AS trade_id,
    price,
    amount,
    nullIf(side, '') AS side,
    exchange_ts,
    nullIf(received_ts, toDateTime64(0, 6, 'UTC')) AS received_ts,
    dateDiff('microsecond', received_ts, exchange_ts) / 1e6 AS skew_s,
    dateDiff('microsecond', lagInFrame(toNullable(exchange_ts)) OVER by_venue, exchange_ts) / 1e6 AS gap_s,
    transform(venue, {silence_venues:Array(String)}, {silence_limits:Array(Float64)},
              {silence_default:Float64}) AS silence_limit_s
FROM market.trades
WHERE exchange_ts >= {start:DateTime64(6, 'UTC')} AND exchange_ts < {end:DateTime64(6, 'UTC')}
  AND ({venue:String} = '' OR venue = {venue:String})
WINDOW by_venue AS (PARTITION BY venue ORDER BY exchange_ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
ORDER BY venue, exchange_ts
