"""Migration 010 on a store written before it: symbols, venue names, amounts and
instrument types of stored rows follow the one symbol rule, so old, live and backfilled
rows agree; candles are rebuilt from the rewritten trades; quotes get their update key.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime

import pytest

from dataflows.sink.batches import TRADES, rows_table
from dataflows.sources.capture import parse_capture
from dataflows.venues import get_venue
from dataflows.venues.instruments import kind_of
from dataflows.venues.stored import convert_stored
from feedhouse.core.paths import sql_dir
from feedhouse.store.candles import build_minutes
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import apply_migrations, init_schema
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
    ("bitmex", "BTC-USDT-PERP", "XBTUSDT", 30000.0, 250000.0),
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
    ("bitmex", "UNI-USDT-PERP", "perpetual", 219.0, 219.0, 0.0),  # quanto: the stored step, later
    ("bitmex", "BTC-USDT-PERP", "perpetual", 250000.0, 250000.0, 0.0),  # linear: the list's, later
    ("deribit", "BTC-USD-INV-PERP", "perpetual", 0.00111732, 10.0, 1.0),
    ("deribit", "BTC-USD-200527-9000-C", "option", 0.1, 0.1, 1.0),
    ("deribit", "BTC-USD-INV-200605", "future", 0.00222222, 20.0, 1.0),
    ("bitget", "BTC-USD-INV-231229", "future", 0.3, 0.3, 1.0),
    ("bitfinex", "BTC-USDT-PERP", "perpetual", 0.3, 0.3, 1.0),
    ("coinbase_exchange", "BTC-USD", "spot", 0.01, 0.01, 1.0),
]


def migrate_before(client, tmp_path, version: int) -> None:
    """Apply the migrations numbered below `version` (a store as it was before it)."""
    before = tmp_path / f"before_{version:03d}"
    before.mkdir()
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        if int(path.name[:3]) < version:
            shutil.copy(path, before / path.name)
    apply_migrations(client, before)


@pytest.fixture
def old_store(settings, tmp_path):
    """A store migrated up to (not including) 010, holding rows in the old convention."""
    with warehouse(settings) as client:
        migrate_before(client, tmp_path, 10)
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


# rows as stored between 010 and 012 (010's convention): (venue, symbol, native, type,
# price, amount, native_amount, contract_size)
TRADES_011 = [
    ("deribit", "BTC-USD-PERP", "BTC-PERPETUAL", "perpetual", 8950.0, 0.00111732, 10.0, 1.0),
    ("deribit", "ETH-USDC-PERP", "ETH_USDC-PERPETUAL", "perpetual", 2000.0, 0.5, 0.5, 1.0),
    ("bitmex", "BTC-USD-210924", "XBTU21", "future", 32000.0, 0.003125, 100.0, 1.0),
    ("bitmex", "UNI-USDT-PERP", "UNIUSDT", "perpetual", 17.292, 219.0, 219.0, 0.0),
    ("bitmex", "BTC-USDT-PERP", "XBTUSDT", "perpetual", 30000.0, 250000.0, 250000.0, 0.0),
    ("binance_delivery", "BTC-USD-PERP", "BTCUSD_PERP", "perpetual", 32000.0, 0.00625, 2.0, 100.0),
    ("binance_futures", "BTC-USDT-PERP", "BTCUSDT", "perpetual", 30000.0, 0.5, 0.5, 1.0),
    ("okx", "BTC-USD-PERP", "BTC-USD-SWAP", "perpetual", 30000.0, 0.01, 3.0, 100.0),
    ("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP", "perpetual", 30000.0, 3.0, 3.0, 0.0),
    ("okx", "ETH-USDT-220527", "ETH-USDT-220527", "future", 2000.0, 7.0, 7.0, 0.0),
    ("bybit", "BTC-USD-PERP", "BTCUSD", "perpetual", 25000.0, 0.004, 100.0, 1.0),
    ("bybit", "BTC-USDT-PERP", "BTCUSDT", "perpetual", 25000.0, 0.1, 0.1, 1.0),
    ("bitget", "BTC-USD-231229", "BTCUSD_231229", "future", 40000.0, 0.3, 0.3, 1.0),
]
# after 012 and the post-migration step: (symbol, amount, contract_size)
EXPECTED_012 = [
    ("BTC-USD-INV-PERP", 0.00111732, 1.0),
    ("ETH-USDC-PERP", 0.5, 1.0),
    ("BTC-USD-INV-210924", 0.003125, 1.0),
    # quanto: 0.00001 XBT per USDT point x the XBT price (the store's median BTC-USD(T) price
    # of that minute, 30,000: no BitMEX XBTUSD trade here) = 0.3 UNI per contract
    ("UNI-USDT-PERP", 65.7, 0.3),
    ("BTC-USDT-PERP", 0.25, 1e-06),  # linear: 1 / underlyingToPositionMultiplier (BitMEX list)
    ("BTC-USD-INV-PERP", 0.00625, 100.0),
    ("BTC-USDT-PERP", 0.5, 1.0),
    ("BTC-USD-INV-PERP", 0.01, 100.0),
    ("BTC-USDT-PERP", 0.03, 0.01),  # ctVal 0.01 BTC (recorded OKX list)
    ("ETH-USDT-220527", 0.7, 0.1),  # ctVal 0.1 ETH
    ("BTC-USD-INV-PERP", 0.004, 1.0),
    ("BTC-USDT-PERP", 0.1, 1.0),
    ("BTC-USD-INV-231229", 0.3, 1.0),
]
# quotes as stored before 012 (sizes in the venue's unit): (venue, symbol, native, type,
# bid, bid_size, ask, ask_size) -> after: (symbol, bid_size, ask_size, native sizes, cs)
QUOTES_011 = [
    (("deribit", "BTC-USD-PERP", "BTC-PERPETUAL", "perpetual", 8949.5, 1500.0, 8950.0, 30.0),
     ("BTC-USD-INV-PERP", 0.16760713, 0.00335196, 1500.0, 30.0, 1.0)),
    (("bitmex", "BTC-USD-PERP", "XBTUSD", "perpetual", 32180.0, 1046200.0, 32180.5, 161000.0),
     ("BTC-USD-INV-PERP", 32.51087632, 5.00302979, 1046200.0, 161000.0, 1.0)),
    (("bitmex", "UNI-USDT-PERP", "UNIUSDT", "perpetual", 17.29, 750.0, 17.3, 175.0),
     ("UNI-USDT-PERP", 225.0, 52.5, 750.0, 175.0, 0.3)),
    (("bitmex", "BTC-USDT-PERP", "XBTUSDT", "perpetual", 30010.0, 1500000.0, 30010.5, 200.0),
     ("BTC-USDT-PERP", 1.5, 0.0002, 1500000.0, 200.0, 1e-06)),
    (("okx", "BTC-USDT-PERP", "BTC-USDT-SWAP", "perpetual", 30000.0, 5.0, 30001.0, 0.0),
     ("BTC-USDT-PERP", 0.05, 0.0, 5.0, 0.0, 0.01)),
    (("okx", "UNI-USD-PERP", "UNI-USD-SWAP", "perpetual", 5.134, 96.0, 5.142, 25.0),
     ("UNI-USD-INV-PERP", 186.98870277, 48.61921431, 96.0, 25.0, 10.0)),
    (("binance_delivery", "BTC-USD-200626", "BTCUSD_200626", "future", 9548.0, 52.0, 9548.1, 11.0),
     ("BTC-USD-INV-200626", 0.54461667, 0.11520617, 52.0, 11.0, 100.0)),
    (("okx", "BTC-USDT", "BTC-USDT", "spot", 30000.0, 0.25, 30001.0, 0.5),
     ("BTC-USDT", 0.25, 0.5, 0.25, 0.5, 1.0)),
]


@pytest.fixture
def store_011(settings, tmp_path):
    """A store migrated up to 011, holding rows in 010's convention."""
    with warehouse(settings) as client:
        migrate_before(client, tmp_path, 12)
        client.insert("market.trades", [
            [v, s, n, str(i), p, a, "buy", TS, TS, k, na, cs]
            for i, (v, s, n, k, p, a, na, cs) in enumerate(TRADES_011)],
            column_names=[*OLD_COLUMNS, "instrument_type", "native_amount", "contract_size"])
        client.insert("market.quotes", [[*row[:3], *row[4:], TS, TS, row[3]] for row, _ in QUOTES_011],
                      column_names=["venue", "symbol", "native_symbol", "bid_price", "bid_size",
                                    "ask_price", "ask_size", "exchange_ts", "received_ts",
                                    "instrument_type"])
    return settings


def test_012_and_the_stored_step_leave_no_row_in_the_old_convention(store_011, caplog) -> None:
    with warehouse(store_011) as client:
        assert apply_migrations(client)[0] == "012_inverse_symbols_quote_sizes.sql"
        with caplog.at_level(logging.WARNING, logger="dataflows.venues.stored"):
            converted = convert_stored(client)
        trades = client.query("SELECT symbol, amount, contract_size FROM market.trades "
                              "ORDER BY toUInt32(trade_id)").result_rows
        quotes = client.query(
            "SELECT symbol, bid_size, ask_size, native_bid_size, native_ask_size, contract_size, "
            "instrument_type FROM market.quotes FINAL ORDER BY bid_price").result_rows
        candles = dict(((v, s), vol) for v, s, vol in client.query(
            "SELECT venue, symbol, sum(volume) FROM market.ohlcv_1m FINAL GROUP BY venue, symbol"
        ).result_rows)
        again = convert_stored(client)  # nothing left to convert: the unknown one stays
    assert [(s, round(a, 8), c) for s, a, c in trades] == EXPECTED_012
    assert sorted(q[:6] for q in quotes) == sorted(after for _, after in QUOTES_011)
    assert [q[6] for q in quotes] == [kind_of(q[0]) for q in quotes]
    # converted: 2 OKX trades and 1 quote, BitMEX XBTUSDT's trade and quote (shipped BitMEX
    # list), the BitMEX quanto's trade and quote (at the store's XBT price): none left
    assert (converted.trades, converted.quotes) == (4, 3)
    assert converted.unknown == {} and converted.unpriced == {}
    assert "stay in contracts" not in caplog.text
    assert (again.trades, again.quotes, again.unknown, again.unpriced) == (0, 0, {}, {})
    # candles follow the rewritten trades: new symbols, BASE volumes of the converted ones
    assert candles[("okx", "BTC-USDT-PERP")] == pytest.approx(0.03)
    assert candles[("okx", "ETH-USDT-220527")] == pytest.approx(0.7)
    assert candles[("bitmex", "BTC-USDT-PERP")] == pytest.approx(0.25)
    assert candles[("bitmex", "UNI-USDT-PERP")] == pytest.approx(65.7)
    assert ("deribit", "BTC-USD-PERP") not in candles
    # the live adapters make the same symbols of the same native names
    for (venue, _, native, *_), (symbol, *_) in zip(TRADES_011, EXPECTED_012, strict=True):
        adapter = get_venue("bybit@inverse" if native == "BTCUSD" else venue)
        assert adapter.normalize_symbol(native) == symbol, (venue, native)


def test_a_store_from_before_010_ends_with_no_row_in_contracts(old_store) -> None:
    """010 + 012 + the stored step: every contract row is in BASE, BitMEX's quanto UNIUSDT
    (valued in XBT) at the XBT price of BitMEX's XBTUSD trade of the same minute."""
    done: list = []  # as `feedhouse init` and `feedhouse run` do it
    applied, _ = init_schema(old_store, after=lambda client: done.append(convert_stored(client)))
    assert applied[0] == "010_instruments.sql" and "012_inverse_symbols_quote_sizes.sql" in applied
    (converted,) = done
    with warehouse(old_store) as client:
        left = client.query(
            "SELECT 'trades', venue, native_symbol FROM market.trades WHERE contract_size = 0 UNION ALL "
            "SELECT 'quotes', venue, native_symbol FROM market.quotes WHERE contract_size = 0").result_rows
        (okx,) = client.query("SELECT amount, native_amount, contract_size FROM market.trades "
                              "WHERE native_symbol = 'BTC-USDT-SWAP'").result_rows
        (bmx,) = client.query("SELECT amount, native_amount, contract_size FROM market.trades "
                              "WHERE native_symbol = 'XBTUSDT'").result_rows
        (uni,) = client.query("SELECT amount, native_amount, contract_size FROM market.trades "
                              "WHERE native_symbol = 'UNIUSDT'").result_rows
        (uni_quote,) = client.query("SELECT bid_size, ask_size, contract_size FROM market.quotes "
                                    "WHERE native_symbol = 'UNIUSDT'").result_rows
    # OKX's BTC-USDT-SWAP and BitMEX's XBTUSDT (trade and quote each) converted by the
    # shipped lists: 3 x 0.01 BTC; 250,000 x 0.000001 XBT
    assert (converted.trades, converted.quotes) == (3, 3) and okx == (0.03, 3.0, 0.01)
    assert bmx == (0.25, 250000.0, 1e-06)
    # UNIUSDT: 0.00001 XBT per point x XBTUSD 24,564.5 = 0.245645 UNI per contract
    assert uni == (pytest.approx(219 * 0.245645), 219.0, pytest.approx(0.245645))
    assert uni_quote == (pytest.approx(0.245645), pytest.approx(2 * 0.245645), pytest.approx(0.245645))
    assert left == [] and converted.unknown == {} and converted.unpriced == {}
