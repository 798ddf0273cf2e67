-- Candles off the insert path: market.ohlcv_1m_mv summed every inserted block of
-- market.trades, so a batch inserted again after a crash (a new insert token, merged away
-- later by ReplacingMergeTree) was counted twice in the candles. The view goes; candles
-- are built for closed minutes from the distinct trades (feedhouse/candles.py) by
-- `feedhouse run` and by the audit, and a rebuilt minute replaces its candle
-- (ReplacingMergeTree keyed by venue, symbol, minute; version built_ts; read with FINAL).
DROP VIEW IF EXISTS market.ohlcv_1m_mv;
DROP TABLE IF EXISTS market.ohlcv_1m;
CREATE TABLE IF NOT EXISTS market.ohlcv_1m
(
    venue LowCardinality(String) COMMENT 'exchange',
    symbol LowCardinality(String) COMMENT 'normalized BASE-QUOTE',
    minute DateTime('UTC') COMMENT 'start of the minute (exchange time)',
    open Float64 COMMENT 'price of the first trade of the minute',
    high Float64 COMMENT 'highest price',
    low Float64 COMMENT 'lowest price',
    close Float64 COMMENT 'price of the last trade of the minute',
    volume Float64 COMMENT 'traded amount in BASE: sum(amount) of the distinct trades',
    notional Float64 COMMENT 'traded value in QUOTE: sum(price * amount) of the distinct trades',
    trades UInt64 COMMENT 'distinct trades (venue, symbol, trade_id) in the minute',
    built_ts DateTime64(6, 'UTC') COMMENT 'when the candle was built; the newest build of a minute wins'
)
ENGINE = ReplacingMergeTree(built_ts)
PARTITION BY toDate(minute)
ORDER BY (venue, symbol, minute)
COMMENT '1-minute candles built for closed minutes from the distinct trades of market.trades (read with FINAL)';
-- Finding the minutes to build reads inserted_ts (trades stored since the last build) and
-- exchange_ts (minutes closed since): neither is in the sorting key, and min/max indexes
-- let those scans skip the parts (granules) outside the range.
ALTER TABLE market.trades ADD INDEX IF NOT EXISTS inserted_ts_minmax inserted_ts TYPE minmax GRANULARITY 1;
ALTER TABLE market.trades ADD INDEX IF NOT EXISTS exchange_ts_minmax exchange_ts TYPE minmax GRANULARITY 1;
ALTER TABLE market.trades MATERIALIZE INDEX inserted_ts_minmax;
ALTER TABLE market.trades MATERIALIZE INDEX exchange_ts_minmax;
-- The candles of what is stored already, from the distinct trades.
INSERT INTO market.ohlcv_1m (venue, symbol, minute, open, high, low, close, volume, notional, trades, built_ts)
SELECT venue, symbol, toStartOfMinute(exchange_ts) AS minute,
    argMin(price, (exchange_ts, trade_id)), max(price), min(price),
    argMax(price, (exchange_ts, trade_id)), sum(amount), sum(price * amount),
    toUInt64(count()), now64(6)
FROM market.trades FINAL
GROUP BY venue, symbol, minute;
