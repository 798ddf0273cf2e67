-- L2 order-book level updates and snapshots (issue 21), in the shape of Tardis.dev's
-- incremental_book_L2 (is_snapshot, side, price, amount; amount 0 = level removed) plus
-- provenance: the venue's symbol and sequence ids, the feed, and both clocks.
-- A redelivered update (same venue, symbol, time, update id, side, price and size) has the
-- same sorting key and collapses; two different sizes at one price and time both stay.
CREATE TABLE IF NOT EXISTS market.book_updates
(
    venue LowCardinality(String) COMMENT 'exchange, as in market.trades',
    symbol LowCardinality(String) COMMENT 'normalized symbol, as in market.trades',
    native_symbol LowCardinality(String) COMMENT 'symbol as the venue spells it',
    instrument_type LowCardinality(String) DEFAULT 'spot' COMMENT 'spot, perpetual, future or option',
    exchange_ts DateTime64(6, 'UTC') COMMENT 'event time stamped by the exchange (receive time where it has none)',
    received_ts DateTime64(6, 'UTC') COMMENT 'when feedhouse received the frame',
    is_snapshot UInt8 COMMENT '1: the level is part of a full book snapshot (the book is replaced), 0: an incremental update',
    side LowCardinality(String) COMMENT 'bid or ask',
    price Float64 COMMENT 'level price in QUOTE',
    amount Float64 COMMENT 'new total size at the level in BASE where the venue quotes BASE; 0 = level removed',
    native_amount Float64 DEFAULT amount COMMENT 'size as the venue sends it (contracts on contract venues: OKX swaps/futures, Binance COIN-M)',
    update_id UInt64 DEFAULT 0 COMMENT 'the venue''s id of this update (Binance u, OKX seqId, Coinbase/Kraken none = 0)',
    prev_update_id UInt64 DEFAULT 0 COMMENT 'the id the venue says came before (Binance U-1 or pu, OKX prevSeqId); 0 where it has none',
    feed LowCardinality(String) DEFAULT '' COMMENT 'configured feed that delivered the update',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse',
    INDEX inserted_ts_minmax inserted_ts TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(inserted_ts)
PARTITION BY toDate(exchange_ts)
ORDER BY (venue, symbol, exchange_ts, update_id, is_snapshot, side, price, amount)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'L2 book level updates and snapshots; one row per (venue, symbol, time, update id, side, price, size)';
