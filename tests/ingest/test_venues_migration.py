"""Migration 010 on a store written before it: symbols, venue names, amounts and
instrument types of stored rows follow the one symbol rule, so old, live and backfilled
rows agree; candles are rebuilt from the rewritten trades; quotes get their update key.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pytest

from dataflows.sink.batches import TRADES, rows_table
from dataflows.sources.capture import parse_capture
from dataflows.venues import get_venue
from dataflows.venues.instruments import kind_of
from feedhouse.core.paths import sql_dir
from feedhouse.store.candles import build_minutes
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import apply_migrations
from tests.support.paths import VENUE_DOCS

TS = datetime(2021, 7, 22, 12, 0, tzinfo=UTC)
OLD_COLUMNS = ["venue", "symbol", "native_symbol", "trade_id", "price", "amount", "side",
               "exchange_ts", "received_ts"]
# rows as the adapters stored them before 010: (venue, symbol, native, price, amount)
OLD_TRADES = [
    ("binance", "BTC-USDT", "BTCUSDT", 30000.0, 0.5),
    ("binance_futures", "BTC-USDT", "BTCUSDT", 30000.0, 0.5),
    ("binance_futures", "BTC-USDT-210924", "BTCUSDT_210924", 30000.0, 0.5),
    ("binance_delivery", "BTC-USD-PERP", "BTCUSD_PERP", 32000.0, 2.0),
    ("binance_delivery", "ETH-USD-PERP", "ETHUSD_PERP", 2000.0, 3.0),
    ("bybit", "BCH-USDT", "BCHUSDT", 1000.0, 0.14),
    ("bybit", "BTC-PERP", "BTCPERP", 20000.0, 0.01),
    ("bybit", "BTC-USD-H23", "BTCUSDH23", 25000.0, 500.0),
    ("bybit", "BTC-29DEC23", "BTC-29DEC23", 40000.0, 0.2),
    ("bybit", "BTC-USD", "BTCUSD", 25000.0, 100.0),
    ("okx", "UNI-USD-SWAP", "UNI-USD-SWAP", 5.0, 100.0),
    ("okx", "BTC-USD-220527", "BTC-USD-220527", 30000.0, 3.0),
    ("okx", "BTC-USDT-SWAP", "BTC-USDT-SWAP", 30000.0, 3.0),
    ("okx", "BTC-USDT", "BTC-USDT", 30000.0, 0.25),
    ("bitmex", "BTC-USD-PERP", "XBTUSD", 24564.5, 200.0),
    ("bitmex", "BTC-USD-U21", "XBTU21", 32000.0, 100.0),
    ("bitmex", "XRP-BTC-U21", "XRPU21", 0.00001819, 15.0),
    ("bitmex", "UNI-USDT-PERP", "UNIUSDT", 17.292, 219.0),
    ("deribit", "BTC-USD-PERP", "BTC-PERPETUAL", 8950.0, 10.0),
    ("deribit", "BTC-USD-27MAY20-9000-C", "BTC-27MAY20-9000-C", 0.0035, 0.1),
    ("deribit", "BTC-USD-5JUN20", "BTC-5JUN20", 9000.0, 20.0),
    ("bitget", "BTC-USD-PERP", "BTCUSD_231229", 40000.0, 0.3),
    ("bitfinex", "BTCF0-USTF0", "tBTCF0:USTF0", 40000.0, 0.3),
    ("coinbase", "BTC-USD", "BTC-USD", 50000.0, 0.01),
]
# (venue, symbol, instrument_type, amount, native_amount, contract_size) after 010
EXPECTED = [
    ("binance", "BTC-USDT", "spot", 0.5, 0.5, 1.0),
    ("binance_futures", "BTC-USDT-PERP", "perpetual", 0.5, 0.5, 1.0),
    ("binance_futures", "BTC-USDT-210924", "future", 0.5, 0.5, 1.0),
    ("binance_delivery", "BTC-USD-INV-PERP", "perpetual", 0.00625, 2.0, 100.0),
    ("binance_delivery", "ETH-USD-INV-PERP", "perpetual", 0.015, 3.0, 10.0),
    ("bybit", "BCH-USDT-PERP", "perpetual", 0.14, 0.14, 1.0),
    ("bybit", "BTC-USDC-PERP", "perpetual", 0.01, 0.01, 1.0),
    ("bybit", "BTC-USD-INV-230331", "future", 0.02, 500.0, 1.0),
    ("bybit", "BTC-USDC-231229", "future", 0.2, 0.2, 1.0),
    ("bybit", "BTC-USD-INV-PERP", "perpetual", 0.004, 100.0, 1.0),
    ("okx", "UNI-USD-INV-PERP", "perpetual", 200.0, 100.0, 10.0),
    ("okx", "BTC-USD-INV-220527", "future", 0.01, 3.0, 100.0),
    ("okx", "BTC-USDT-PERP", "perpetual", 3.0, 3.0, 0.0),  # ctVal not in the row: unknown
    ("okx", "BTC-USDT", "spot", 0.25, 0.25, 1.0),
    ("bitmex", "BTC-USD-INV-PERP", "perpetual", 0.00814183, 200.0, 1.0),
    ("bitmex", "BTC-USD-INV-210924", "future", 0.003125, 100.0, 1.0),
    ("bitmex", "XRP-BTC-210924", "future", 15.0, 15.0, 1.0),
    ("bitmex", "UNI-USDT-PERP", "perpetual", 219.0, 219.0, 0.0),  # multiplier unknown
    ("deribit", "BTC-USD-INV-PERP", "perpetual", 0.00111732, 10.0, 1.0),
    ("deribit", "BTC-USD-200527-9000-C", "option", 0.1, 0.1, 1.0),
    ("deribit", "BTC-USD-INV-200605", "future", 0.00222222, 20.0, 1.0),
    ("bitget", "BTC-USD-INV-231229", "future", 0.3, 0.3, 1.0),
    ("bitfinex", "BTC-USDT-PERP", "perpetual", 0.3, 0.3, 1.0),
    ("coinbase_exchange", "BTC-USD", "spot", 0.01, 0.01, 1.0),
]


@pytest.fixture
def old_store(settings, tmp_path):
    """A store migrated up to (not including) 010, holding rows in the old convention."""
    before = tmp_path / "before_010"
    before.mkdir()
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        if int(path.name[:3]) < 10:
            shutil.copy(path, before / path.name)
    with warehouse(settings) as client:
        apply_migrations(client, before)
        rows = [[v, s, n, str(i), p, a, "buy", TS, TS] for i, (v, s, n, p, a) in enumerate(OLD_TRADES)]
        client.insert("market.trades", rows, column_names=OLD_COLUMNS)
        quotes = [[v, s, n, p, 1.0, p * 1.001, 2.0, TS, TS] for v, s, n, p, _ in OLD_TRADES]
        client.insert("market.quotes", quotes, column_names=[
            "venue", "symbol", "native_symbol", "bid_price", "bid_size", "ask_price",
            "ask_size", "exchange_ts", "received_ts"])
        client.insert("ops.feed_gaps", [["cb", "coinbase", TS, TS, "disconnect", "test", 0]],
                      column_names=["feed", "venue", "gap_start", "gap_end", "kind", "reason",
                                    "missing"])
    return settings


def test_stored_rows_follow_the_symbol_rule_after_010(old_store) -> None:
    with warehouse(old_store) as client:
        assert apply_migrations(client)[0] == "010_instruments.sql"
        got = client.query(
            "SELECT venue, symbol, instrument_type, amount, native_amount, contract_size "
            "FROM market.trades ORDER BY toUInt32(trade_id)").result_rows
        quotes = client.query(
            "SELECT venue, symbol, instrument_type, update_id FROM market.quotes "
            "ORDER BY bid_price, venue, symbol").result_rows
        candles = client.query(
            "SELECT venue, symbol, sum(volume), sum(trades) FROM market.ohlcv_1m FINAL "
            "GROUP BY venue, symbol ORDER BY venue, symbol").result_rows
        gaps = client.query("SELECT venue FROM ops.feed_gaps").result_rows
        key = client.query("SELECT sorting_key FROM system.tables "
                           "WHERE database = 'market' AND name = 'quotes'").result_rows
        leftovers = client.query("SELECT count() FROM system.tables WHERE name LIKE '%_010'")
    assert [(v, s, k, round(a, 8), n, c) for v, s, k, a, n, c in got] == EXPECTED
    # quotes: the same symbols and types, no update id known for old rows
    assert sorted((v, s, k) for v, s, k, _ in quotes) == sorted((v, s, k) for v, s, k, *_ in EXPECTED)
    assert {u for *_, u in quotes} == {0}
    # candles rebuilt from the rewritten trades: new symbols, BASE volumes
    by_key = {(v, s): (vol, n) for v, s, vol, n in candles}
    assert by_key[("deribit", "BTC-USD-INV-PERP")] == (pytest.approx(0.00111732), 1)
    assert ("binance_futures", "BTC-USDT") not in by_key and ("coinbase", "BTC-USD") not in by_key
    assert sum(n for _, n in by_key.values()) == len(EXPECTED)
    assert gaps == [("coinbase_exchange",)]
    assert key == [("venue, symbol, exchange_ts, update_id, bid_price, ask_price, bid_size, ask_size",)]
    assert leftovers.result_rows == [(0,)]


def test_live_rows_and_migrated_rows_agree(old_store) -> None:
    """What the adapters produce now is what 010 turned the stored rows into."""
    with warehouse(old_store) as client:
        apply_migrations(client)
        stored = dict(((v, n), (s, k)) for v, s, n, k in client.query(
            "SELECT venue, symbol, native_symbol, instrument_type FROM market.trades").result_rows)

    for (venue, native), (symbol, kind) in stored.items():
        if venue == "bybit" and native in ("BTCUSD", "BTCUSDH23"):
            venue = "bybit@inverse"  # the stored row came from the inverse endpoint
        adapter = get_venue(venue)
        assert adapter.normalize_symbol(native) == symbol, (venue, native)
        assert kind_of(symbol) == kind


def test_candles_of_new_trades_are_in_base_after_010(initialized) -> None:
    """Contract trades stored after 010 (Deribit's documented inverse perpetual) make
    candles in BASE: the builder sums the BASE amounts, not the venue's contracts."""
    _, result, _ = parse_capture(VENUE_DOCS / "DERIBIT_TRADES.ws.docs")
    data = rows_table(TRADES, result.trades, {"feed": "d"})
    minutes = {t.exchange_ts // 60_000_000 * 60 for t in result.trades}
    with warehouse(initialized) as client:
        client.insert_arrow(TRADES, data)
        build_minutes(client, minutes)
        (volume, trades) = client.query(
            "SELECT sum(volume), sum(trades) FROM market.ohlcv_1m FINAL").result_rows[0]
    assert trades == len(result.trades)
    assert volume == pytest.approx(sum(t.amount for t in result.trades))
    assert volume < sum(t.native_amount for t in result.trades)  # contracts are not BASE
