-- Trades, best bid/ask quotes and 1-minute OHLCV built from trades.
CREATE TABLE IF NOT EXISTS market.trades
(
    venue LowCardinality(String) COMMENT 'exchange, e.g. binance, coinbase',
    symbol LowCardinality(String) COMMENT 'normalized BASE-QUOTE, e.g. BTC-USDT',
    native_symbol LowCardinality(String) COMMENT 'symbol as the venue spells it',
    trade_id String COMMENT 'exchange trade id; a stable hash of the trade fields where the venue has none',
    price Float64 COMMENT 'trade price in QUOTE',
    amount Float64 COMMENT 'trade size in BASE',
    side LowCardinality(String) COMMENT 'taker side: buy, sell or unknown',
    exchange_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the exchange',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the frame',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse',
    feed LowCardinality(String) DEFAULT '' COMMENT 'configured feed that delivered the trade'
)
ENGINE = ReplacingMergeTree(inserted_ts)
PARTITION BY toDate(exchange_ts)
ORDER BY (venue, symbol, trade_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'normalized trades; one row per (venue, symbol, trade_id)';

CREATE TABLE IF NOT EXISTS market.quotes
(
    venue LowCardinality(String) COMMENT 'exchange',
    symbol LowCardinality(String) COMMENT 'normalized BASE-QUOTE',
    native_symbol LowCardinality(String) COMMENT 'symbol as the venue spells it',
    bid_price Float64 COMMENT 'best bid price',
    bid_size Float64 COMMENT 'size at the best bid',
    ask_price Float64 COMMENT 'best ask price',
    ask_size Float64 COMMENT 'size at the best ask',
    exchange_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the exchange (receive time where it has none)',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the frame',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse',
    feed LowCardinality(String) DEFAULT '' COMMENT 'configured feed that delivered the quote'
)
ENGINE = ReplacingMergeTree(inserted_ts)
PARTITION BY toDate(exchange_ts)
ORDER BY (venue, symbol, exchange_ts, bid_price, ask_price)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'best bid/ask updates';

CREATE TABLE IF NOT EXISTS market.ohlcv_1m
(
    venue LowCardinality(String) COMMENT 'exchange',
    symbol LowCardinality(String) COMMENT 'normalized BASE-QUOTE',
    minute DateTime('UTC') COMMENT 'start of the minute (exchange time)',
    open AggregateFunction(argMin, Float64, DateTime64(6, 'UTC')) COMMENT 'first price: finalize with argMinMerge',
    high SimpleAggregateFunction(max, Float64) COMMENT 'highest price',
    low SimpleAggregateFunction(min, Float64) COMMENT 'lowest price',
    close AggregateFunction(argMax, Float64, DateTime64(6, 'UTC')) COMMENT 'last price: finalize with argMaxMerge',
    volume SimpleAggregateFunction(sum, Float64) COMMENT 'traded amount in BASE',
    notional SimpleAggregateFunction(sum, Float64) COMMENT 'traded value in QUOTE (sum of price*amount)',
    trades SimpleAggregateFunction(sum, UInt64) COMMENT 'number of trades'
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (venue, symbol, minute)
COMMENT '1-minute candles, fed by market.ohlcv_1m_mv from market.trades';

CREATE MATERIALIZED VIEW IF NOT EXISTS market.ohlcv_1m_mv TO market.ohlcv_1m AS
SELECT
    venue,
    symbol,
    toStartOfMinute(exchange_ts) AS minute,
    argMinState(price, exchange_ts) AS open,
    max(price) AS high,
    min(price) AS low,
    argMaxState(price, exchange_ts) AS close,
    sum(amount) AS volume,
    sum(price * amount) AS notional,
    toUInt64(count()) AS trades
FROM market.trades
GROUP BY venue, symbol, minute;
