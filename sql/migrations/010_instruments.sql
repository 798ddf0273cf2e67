-- One symbol rule, instrument types and BASE amounts (issue 23), quote keys that identify
-- an update (issue 16 item 4). Stored rows are rewritten so old, live and backfilled rows agree:
-- - symbols: Binance USD-M perpetuals BTC-USDT -> BTC-USDT-PERP; OKX -SWAP -> -PERP; Bybit
--   rows (the default /linear endpoint was the only market before 010) BTC-USDT ->
--   BTC-USDT-PERP, BTC-PERP -> BTC-USDC-PERP, month codes (BTC-USD-H23) and DMMMYY expiries
--   -> YYMMDD (last Friday of the month for codes); BitMEX month codes -> YYMMDD; Deribit
--   DMMMYY -> YYMMDD; Bitget delivery contracts get their expiry back from native_symbol;
--   Bitfinex perpetuals BTCF0-USTF0 -> BTC-USDT-PERP;
-- - venue coinbase -> coinbase_exchange (every row stored before 010 came from ws-feed);
-- - amounts: inverse contracts (Deribit and BitMEX XBT perpetuals/futures in USD, Binance
--   COIN-M and OKX USD contracts of 100/10 USD, Bybit inverse USD contracts) -> BASE at the
--   trade's price, the stored size kept as native_amount; linear contracts whose size per
--   contract the rows do not say (BitMEX USDT/quanto, OKX USDT/USDC swaps, futures, options)
--   keep their amount and get contract_size 0 (= unknown), so queries can exclude them;
-- - instrument_type from the new symbol; market.quotes gets update_id in its sorting key;
-- - market.ohlcv_1m (built from distinct trades since migration 008) is rebuilt from the
--   rewritten trades (symbols and BASE volumes).
-- Each table is rebuilt beside the old one, swapped in with EXCHANGE TABLES and the old
-- data dropped.

CREATE TABLE IF NOT EXISTS market.trades_010
(
    venue LowCardinality(String) COMMENT 'exchange, e.g. binance, coinbase (Advanced Trade), coinbase_exchange',
    symbol LowCardinality(String) COMMENT 'BASE-QUOTE (spot), BASE-QUOTE-PERP, BASE-QUOTE-YYMMDD (future), BASE-QUOTE-YYMMDD-STRIKE-C|P (option)',
    native_symbol LowCardinality(String) COMMENT 'symbol as the venue spells it',
    trade_id String COMMENT 'exchange trade id; a stable hash of the trade fields where the venue has none',
    price Float64 COMMENT 'trade price in QUOTE',
    amount Float64 COMMENT 'trade size in BASE',
    side LowCardinality(String) COMMENT 'taker side: buy, sell or unknown',
    exchange_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the exchange',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the frame',
    instrument_type LowCardinality(String) DEFAULT 'spot' COMMENT 'spot, perpetual, future or option',
    native_amount Float64 DEFAULT amount COMMENT 'trade size as the venue reports it (contracts, USD, BASE)',
    contract_size Float64 DEFAULT 1 COMMENT 'value of one native_amount unit: in BASE, or in QUOTE for inverse contracts (amount = native_amount * contract_size / price); 0 = unknown (linear contracts stored before migration 010: amount is in contracts)',
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

INSERT INTO market.trades_010 (venue, symbol, native_symbol, trade_id, price, amount, side,
    exchange_ts, received_ts, instrument_type, native_amount, contract_size, inserted_ts, feed)
SELECT new_venue, s, native_symbol, trade_id, price, if(inverse > 0, if(amount * inverse / price >= 1e-4, round(amount * inverse / price, 8), amount * inverse / price), amount), side, exchange_ts, received_ts,
    kind, amount, multiIf(inverse > 0, inverse, (venue = 'bitmex' AND kind != 'spot' AND inverse = 0 AND NOT match(s, '^[^-]+-BTC-')) OR (venue = 'okx' AND kind != 'spot' AND inverse = 0), 0, 1), inserted_ts, feed
FROM
(
    SELECT
        venue, native_symbol, trade_id, price, amount, side, exchange_ts, received_ts,
        inserted_ts, feed,
        if(venue = 'coinbase', 'coinbase_exchange', venue) AS new_venue,
        multiIf(
            venue = 'binance_futures' AND match(symbol, '^[A-Z0-9.]+-[A-Z0-9.]+$'), concat(symbol, '-PERP'),
            venue = 'okx' AND endsWith(symbol, '-SWAP'), concat(substring(symbol, 1, length(symbol) - 5), '-PERP'),
            venue = 'bybit' AND match(symbol, '^[A-Z0-9.]+-PERP$'), replaceRegexpOne(symbol, '-PERP$', '-USDC-PERP'),
            venue = 'bybit' AND match(symbol, '^[A-Z0-9.]+-[0-9]{1,2}[A-Z]{3}[0-9]{2}$'), concat(splitByChar('-', symbol)[1], '-USDC-', concat(substring(leftPad(splitByChar('-', symbol)[2], 7, '0'), 6, 2), leftPad(toString(intDiv(position('JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC', substring(leftPad(splitByChar('-', symbol)[2], 7, '0'), 3, 3)) + 2, 3)), 2, '0'), substring(leftPad(splitByChar('-', symbol)[2], 7, '0'), 1, 2))),
            venue = 'bybit' AND match(symbol, '^[A-Z0-9.]+-[A-Z0-9.]+$'), concat(symbol, '-PERP'),
            venue IN ('bybit', 'bitmex') AND match(symbol, '-[FGHJKMNQUVXZ][0-9]{2}$'), concat(substring(symbol, 1, length(symbol) - 3), formatDateTime(toLastDayOfMonth(makeDate(2000 + toUInt16OrZero(substring(right(symbol, 3), 2, 2)), greatest(position('FGHJKMNQUVXZ', substring(right(symbol, 3), 1, 1)), 1), 1)) - toIntervalDay((toDayOfWeek(toLastDayOfMonth(makeDate(2000 + toUInt16OrZero(substring(right(symbol, 3), 2, 2)), greatest(position('FGHJKMNQUVXZ', substring(right(symbol, 3), 1, 1)), 1), 1))) + 2) % 7), '%y%m%d')),
            venue = 'deribit' AND match(symbol, '^[^-]+-[^-]+-[0-9]{1,2}[A-Z]{3}[0-9]{2}(-|$)'), concat(splitByChar('-', symbol)[1], '-', splitByChar('-', symbol)[2], '-', concat(substring(leftPad(splitByChar('-', symbol)[3], 7, '0'), 6, 2), leftPad(toString(intDiv(position('JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC', substring(leftPad(splitByChar('-', symbol)[3], 7, '0'), 3, 3)) + 2, 3)), 2, '0'), substring(leftPad(splitByChar('-', symbol)[3], 7, '0'), 1, 2)), substring(symbol, length(arrayStringConcat(arraySlice(splitByChar('-', symbol), 1, 3), '-')) + 1)),
            venue = 'bitget' AND match(native_symbol, '_[0-9]{6}$'), concat(splitByChar('-', symbol)[1], '-', splitByChar('-', symbol)[2], '-', right(native_symbol, 6)),
            venue = 'bitfinex' AND match(native_symbol, '^t[A-Z0-9]+F0:[A-Z0-9]+F0$'), concat(replaceRegexpOne(splitByChar('-', symbol)[1], 'F0$', ''), '-', multiIf(replaceRegexpOne(splitByChar('-', symbol)[2], 'F0$', '') = 'UST', 'USDT', replaceRegexpOne(splitByChar('-', symbol)[2], 'F0$', '') = 'UDC', 'USDC', replaceRegexpOne(splitByChar('-', symbol)[2], 'F0$', '')), '-PERP'),
            symbol) AS s,
        multiIf(endsWith(s, '-PERP'), 'perpetual', match(s, '^[^-]+-[^-]+-[0-9]{6}$'), 'future', match(s, '^[^-]+-[^-]+-[0-9]{6}-[^-]+-[CP]$'), 'option', 'spot') AS kind,
        multiIf(
            venue = 'deribit' AND kind IN ('perpetual', 'future') AND position(splitByChar('-', native_symbol)[1], '_') = 0, 1,
            venue = 'bitmex' AND kind != 'spot' AND startsWith(native_symbol, 'XBT') AND match(s, '^BTC-(USD|EUR)-'), 1,
            venue = 'binance_delivery', if(startsWith(s, 'BTC-'), 100, 10),
            venue = 'okx' AND kind IN ('perpetual', 'future') AND splitByChar('-', s)[2] = 'USD', if(startsWith(s, 'BTC-'), 100, 10),
            venue = 'bybit' AND match(native_symbol, '^[A-Z0-9]+USD([FGHJKMNQUVXZ][0-9]{2})?$'), 1,
            0) AS inverse
    FROM market.trades
);

EXCHANGE TABLES market.trades AND market.trades_010;

DROP TABLE IF EXISTS market.trades_010;

CREATE TABLE IF NOT EXISTS market.quotes_010
(
    venue LowCardinality(String) COMMENT 'exchange',
    symbol LowCardinality(String) COMMENT 'normalized symbol, as in market.trades',
    native_symbol LowCardinality(String) COMMENT 'symbol as the venue spells it',
    bid_price Float64 COMMENT 'best bid price',
    bid_size Float64 COMMENT 'size at the best bid, in the venue''s unit (contracts on contract venues)',
    ask_price Float64 COMMENT 'best ask price',
    ask_size Float64 COMMENT 'size at the best ask, in the venue''s unit (contracts on contract venues)',
    exchange_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the exchange (receive time where it has none)',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the frame',
    instrument_type LowCardinality(String) DEFAULT 'spot' COMMENT 'spot, perpetual, future or option',
    update_id UInt64 DEFAULT 0 COMMENT 'the venue''s id of this best bid/ask update (Binance u, Gemini u, HTX seqId, Gate u, Coinbase sequence); 0 where it has none',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse',
    feed LowCardinality(String) DEFAULT '' COMMENT 'configured feed that delivered the quote'
)
ENGINE = ReplacingMergeTree(inserted_ts)
PARTITION BY toDate(exchange_ts)
ORDER BY (venue, symbol, exchange_ts, update_id, bid_price, ask_price, bid_size, ask_size)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'best bid/ask updates; one row per update (its update id, else every field)';

INSERT INTO market.quotes_010 (venue, symbol, native_symbol, bid_price, bid_size, ask_price,
    ask_size, exchange_ts, received_ts, instrument_type, update_id, inserted_ts, feed)
SELECT new_venue, s, native_symbol, bid_price, bid_size, ask_price, ask_size, exchange_ts,
    received_ts, multiIf(endsWith(s, '-PERP'), 'perpetual', match(s, '^[^-]+-[^-]+-[0-9]{6}$'), 'future', match(s, '^[^-]+-[^-]+-[0-9]{6}-[^-]+-[CP]$'), 'option', 'spot'), 0, inserted_ts, feed
FROM
(
    SELECT
        venue, native_symbol, bid_price, bid_size, ask_price, ask_size, exchange_ts,
        received_ts, inserted_ts, feed,
        if(venue = 'coinbase', 'coinbase_exchange', venue) AS new_venue,
        multiIf(
            venue = 'binance_futures' AND match(symbol, '^[A-Z0-9.]+-[A-Z0-9.]+$'), concat(symbol, '-PERP'),
            venue = 'okx' AND endsWith(symbol, '-SWAP'), concat(substring(symbol, 1, length(symbol) - 5), '-PERP'),
            venue = 'bybit' AND match(symbol, '^[A-Z0-9.]+-PERP$'), replaceRegexpOne(symbol, '-PERP$', '-USDC-PERP'),
            venue = 'bybit' AND match(symbol, '^[A-Z0-9.]+-[0-9]{1,2}[A-Z]{3}[0-9]{2}$'), concat(splitByChar('-', symbol)[1], '-USDC-', concat(substring(leftPad(splitByChar('-', symbol)[2], 7, '0'), 6, 2), leftPad(toString(intDiv(position('JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC', substring(leftPad(splitByChar('-', symbol)[2], 7, '0'), 3, 3)) + 2, 3)), 2, '0'), substring(leftPad(splitByChar('-', symbol)[2], 7, '0'), 1, 2))),
            venue = 'bybit' AND match(symbol, '^[A-Z0-9.]+-[A-Z0-9.]+$'), concat(symbol, '-PERP'),
            venue IN ('bybit', 'bitmex') AND match(symbol, '-[FGHJKMNQUVXZ][0-9]{2}$'), concat(substring(symbol, 1, length(symbol) - 3), formatDateTime(toLastDayOfMonth(makeDate(2000 + toUInt16OrZero(substring(right(symbol, 3), 2, 2)), greatest(position('FGHJKMNQUVXZ', substring(right(symbol, 3), 1, 1)), 1), 1)) - toIntervalDay((toDayOfWeek(toLastDayOfMonth(makeDate(2000 + toUInt16OrZero(substring(right(symbol, 3), 2, 2)), greatest(position('FGHJKMNQUVXZ', substring(right(symbol, 3), 1, 1)), 1), 1))) + 2) % 7), '%y%m%d')),
            venue = 'deribit' AND match(symbol, '^[^-]+-[^-]+-[0-9]{1,2}[A-Z]{3}[0-9]{2}(-|$)'), concat(splitByChar('-', symbol)[1], '-', splitByChar('-', symbol)[2], '-', concat(substring(leftPad(splitByChar('-', symbol)[3], 7, '0'), 6, 2), leftPad(toString(intDiv(position('JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC', substring(leftPad(splitByChar('-', symbol)[3], 7, '0'), 3, 3)) + 2, 3)), 2, '0'), substring(leftPad(splitByChar('-', symbol)[3], 7, '0'), 1, 2)), substring(symbol, length(arrayStringConcat(arraySlice(splitByChar('-', symbol), 1, 3), '-')) + 1)),
            venue = 'bitget' AND match(native_symbol, '_[0-9]{6}$'), concat(splitByChar('-', symbol)[1], '-', splitByChar('-', symbol)[2], '-', right(native_symbol, 6)),
            venue = 'bitfinex' AND match(native_symbol, '^t[A-Z0-9]+F0:[A-Z0-9]+F0$'), concat(replaceRegexpOne(splitByChar('-', symbol)[1], 'F0$', ''), '-', multiIf(replaceRegexpOne(splitByChar('-', symbol)[2], 'F0$', '') = 'UST', 'USDT', replaceRegexpOne(splitByChar('-', symbol)[2], 'F0$', '') = 'UDC', 'USDC', replaceRegexpOne(splitByChar('-', symbol)[2], 'F0$', '')), '-PERP'),
            symbol) AS s
    FROM market.quotes
);

EXCHANGE TABLES market.quotes AND market.quotes_010;

DROP TABLE IF EXISTS market.quotes_010;

CREATE TABLE IF NOT EXISTS market.ohlcv_1m_010
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

-- the candles of the rewritten trades (new symbols, BASE volumes), as migration 008 builds them
INSERT INTO market.ohlcv_1m_010 (venue, symbol, minute, open, high, low, close, volume, notional, trades, built_ts)
SELECT venue, symbol, toStartOfMinute(exchange_ts) AS minute,
    argMin(price, (exchange_ts, trade_id)), max(price), min(price),
    argMax(price, (exchange_ts, trade_id)), sum(amount), sum(price * amount),
    toUInt64(count()), now64(6)
FROM market.trades FINAL
GROUP BY venue, symbol, minute;

EXCHANGE TABLES market.ohlcv_1m AND market.ohlcv_1m_010;

DROP TABLE IF EXISTS market.ohlcv_1m_010;

ALTER TABLE ops.feed_gaps UPDATE venue = 'coinbase_exchange' WHERE venue = 'coinbase';
