-- The inverse marker and quote sizes in BASE (issue 23). Stored rows are rewritten so old,
-- live and backfilled rows agree:
-- - symbols: inverse (coin-margined) perpetuals and futures get `-INV` before the expiry
--   part on every venue (BTC-USD-PERP -> BTC-USD-INV-PERP, BTC-USD-210924 ->
--   BTC-USD-INV-210924), so an inverse and a linear contract on one pair are never one
--   symbol. Inverse rows are found as migration 010 found them: Deribit futures and
--   perpetuals without '_QUOTE' in the native name, BitMEX XBT contracts against USD/EUR,
--   every Binance COIN-M contract, OKX and Bitget USD-quoted contracts, Bybit's inverse
--   names (BTCUSD, BTCUSDH23);
-- - market.quotes: bid_size/ask_size become BASE units like market.trades.amount; the
--   venue's own sizes are kept in the new native_bid_size/native_ask_size columns with
--   contract_size (010's meaning: BASE per unit, QUOTE per unit for inverse contracts,
--   0 = unknown). Inverse contracts: size * contract_size / the side's price (Deribit and
--   BitMEX 1 USD, Bybit 1 USD, Binance COIN-M and OKX 100 USD for BTC, 10 USD others);
--   linear contracts whose size per contract the rows do not say (BitMEX non-XBT-quoted
--   contracts, OKX swaps, futures and options) keep their size with contract_size 0, and
--   the post-migration step (dataflows/venues/stored.py, run by `feedhouse init` and
--   `feedhouse run`) converts them with the shipped and cached instrument specs;
-- - market.ohlcv_1m is rebuilt from the rewritten trades (new symbols), as 010 does.

CREATE TABLE IF NOT EXISTS market.trades_012
(
    venue LowCardinality(String) COMMENT 'exchange, e.g. binance, coinbase (Advanced Trade), coinbase_exchange',
    symbol LowCardinality(String) COMMENT 'BASE-QUOTE (spot), BASE-QUOTE-PERP, BASE-QUOTE-YYMMDD (future), BASE-QUOTE-YYMMDD-STRIKE-C|P (option); inverse contracts BASE-QUOTE-INV-PERP|YYMMDD',
    native_symbol LowCardinality(String) COMMENT 'symbol as the venue spells it',
    trade_id String COMMENT 'exchange trade id; a stable hash of the trade fields where the venue has none',
    price Float64 COMMENT 'trade price in QUOTE',
    amount Float64 COMMENT 'trade size in BASE',
    side LowCardinality(String) COMMENT 'taker side: buy, sell or unknown',
    exchange_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the exchange',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the frame',
    instrument_type LowCardinality(String) DEFAULT 'spot' COMMENT 'spot, perpetual, future or option',
    native_amount Float64 DEFAULT amount COMMENT 'trade size as the venue reports it (contracts, USD, BASE)',
    contract_size Float64 DEFAULT 1 COMMENT 'value of one native_amount unit: in BASE, or in QUOTE for inverse contracts (amount = native_amount * contract_size / price); 0 = unknown (amount is in contracts: no instrument spec known)',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse',
    feed LowCardinality(String) DEFAULT '' COMMENT 'configured feed that delivered the trade',
    INDEX inserted_ts_minmax inserted_ts TYPE minmax GRANULARITY 1,
    INDEX exchange_ts_minmax exchange_ts TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(inserted_ts)
PARTITION BY toDate(exchange_ts)
ORDER BY (venue, symbol, trade_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'normalized trades; one row per (venue, symbol, trade_id)';

INSERT INTO market.trades_012 (venue, symbol, native_symbol, trade_id, price, amount, side,
    exchange_ts, received_ts, instrument_type, native_amount, contract_size, inserted_ts, feed)
SELECT venue, if(inv, concat(splitByChar('-', symbol)[1], '-', splitByChar('-', symbol)[2], '-INV-', arrayStringConcat(arraySlice(splitByChar('-', symbol), 3), '-')), symbol), native_symbol, trade_id, price, amount, side, exchange_ts, received_ts,
    instrument_type, native_amount, contract_size, inserted_ts, feed
FROM
(
    SELECT *,
        instrument_type IN ('perpetual', 'future') AND splitByChar('-', symbol)[3] != 'INV' AND multiIf(
            venue = 'deribit', position(splitByChar('-', native_symbol)[1], '_') = 0,
            venue = 'bitmex', startsWith(native_symbol, 'XBT') AND match(symbol, '^BTC-(USD|EUR)-'),
            venue = 'binance_delivery', 1,
            venue IN ('okx', 'bitget'), splitByChar('-', symbol)[2] = 'USD',
            venue = 'bybit', match(native_symbol, '^[A-Z0-9]+USD([FGHJKMNQUVXZ][0-9]{2})?$'),
            0) AS inv
    FROM market.trades
);

EXCHANGE TABLES market.trades AND market.trades_012;

DROP TABLE IF EXISTS market.trades_012;

CREATE TABLE IF NOT EXISTS market.quotes_012
(
    venue LowCardinality(String) COMMENT 'exchange',
    symbol LowCardinality(String) COMMENT 'normalized symbol, as in market.trades',
    native_symbol LowCardinality(String) COMMENT 'symbol as the venue spells it',
    bid_price Float64 COMMENT 'best bid price',
    bid_size Float64 COMMENT 'size at the best bid in BASE (native_bid_size converted like market.trades.amount)',
    ask_price Float64 COMMENT 'best ask price',
    ask_size Float64 COMMENT 'size at the best ask in BASE',
    exchange_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the exchange (receive time where it has none)',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the frame',
    instrument_type LowCardinality(String) DEFAULT 'spot' COMMENT 'spot, perpetual, future or option',
    update_id UInt64 DEFAULT 0 COMMENT 'the venue''s id of this best bid/ask update (Binance u, Gemini u, HTX seqId, Gate u, Coinbase sequence); 0 where it has none',
    native_bid_size Float64 DEFAULT bid_size COMMENT 'size at the best bid as the venue reports it (contracts, USD, BASE)',
    native_ask_size Float64 DEFAULT ask_size COMMENT 'size at the best ask as the venue reports it',
    contract_size Float64 DEFAULT 1 COMMENT 'value of one native size unit: in BASE, or in QUOTE for inverse contracts (size = native * contract_size / price); 0 = unknown (sizes are contracts: no instrument spec known)',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse',
    feed LowCardinality(String) DEFAULT '' COMMENT 'configured feed that delivered the quote'
)
ENGINE = ReplacingMergeTree(inserted_ts)
PARTITION BY toDate(exchange_ts)
ORDER BY (venue, symbol, exchange_ts, update_id, bid_price, ask_price, bid_size, ask_size)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'best bid/ask updates; one row per update (its update id, else every field)';

INSERT INTO market.quotes_012 (venue, symbol, native_symbol, bid_price, bid_size, ask_price,
    ask_size, exchange_ts, received_ts, instrument_type, update_id, native_bid_size,
    native_ask_size, contract_size, inserted_ts, feed)
SELECT venue, if(inv, concat(splitByChar('-', symbol)[1], '-', splitByChar('-', symbol)[2], '-INV-', arrayStringConcat(arraySlice(splitByChar('-', symbol), 3), '-')), symbol), native_symbol, bid_price, multiIf(cs = 0, bid_size, inv, if(bid_price > 0, if(bid_size * cs / bid_price >= 1e-4, round(bid_size * cs / bid_price, 8), bid_size * cs / bid_price), 0), round(bid_size * cs, 12)), ask_price,
    multiIf(cs = 0, ask_size, inv, if(ask_price > 0, if(ask_size * cs / ask_price >= 1e-4, round(ask_size * cs / ask_price, 8), ask_size * cs / ask_price), 0), round(ask_size * cs, 12)), exchange_ts, received_ts, instrument_type, update_id,
    bid_size, ask_size, cs, inserted_ts, feed
FROM
(
    SELECT *,
        multiIf(inv, if(venue IN ('binance_delivery', 'okx'), if(startsWith(symbol, 'BTC-'), 100, 10), 1),
            (venue = 'bitmex' AND instrument_type != 'spot' AND NOT match(symbol, '^[^-]+-BTC-'))
            OR (venue = 'okx' AND instrument_type != 'spot'), 0, 1) AS cs
    FROM
    (
        SELECT *,
            instrument_type IN ('perpetual', 'future') AND splitByChar('-', symbol)[3] != 'INV' AND multiIf(
            venue = 'deribit', position(splitByChar('-', native_symbol)[1], '_') = 0,
            venue = 'bitmex', startsWith(native_symbol, 'XBT') AND match(symbol, '^BTC-(USD|EUR)-'),
            venue = 'binance_delivery', 1,
            venue IN ('okx', 'bitget'), splitByChar('-', symbol)[2] = 'USD',
            venue = 'bybit', match(native_symbol, '^[A-Z0-9]+USD([FGHJKMNQUVXZ][0-9]{2})?$'),
            0) AS inv
        FROM market.quotes
    )
);

EXCHANGE TABLES market.quotes AND market.quotes_012;

DROP TABLE IF EXISTS market.quotes_012;

CREATE TABLE IF NOT EXISTS market.ohlcv_1m_012
(
    venue LowCardinality(String) COMMENT 'exchange',
    symbol LowCardinality(String) COMMENT 'normalized symbol, as in market.trades',
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

-- the candles of the rewritten trades (new symbols), as migration 008 builds them
INSERT INTO market.ohlcv_1m_012 (venue, symbol, minute, open, high, low, close, volume, notional, trades, built_ts)
SELECT venue, symbol, toStartOfMinute(exchange_ts) AS minute,
    argMin(price, (exchange_ts, trade_id)), max(price), min(price),
    argMax(price, (exchange_ts, trade_id)), sum(amount), sum(price * amount),
    toUInt64(count()), now64(6)
FROM market.trades FINAL
GROUP BY venue, symbol, minute;

EXCHANGE TABLES market.ohlcv_1m AND market.ohlcv_1m_012;

DROP TABLE IF EXISTS market.ohlcv_1m_012;
