"""Columnar backfill (feedhouse.verify.backfill, dataflows/archive_columns.py) on a real chDB store:
generated Binance days and Tardis.dev files load exactly (count and sum(price*amount) as in
the files) and once; a live-recorded day (the recorded sessions, parsed by capture parsing)
meets a Tardis file of the same trades; the contract check agrees with the pydantic model."""

from __future__ import annotations

import gzip
import sys
import zipfile
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dataflows.sink.batches import LEDGER_TABLE, TRADES, ledger_table, make_batch, rows_table
from dataflows.sources.archive_base import live_spec, to_base
from dataflows.sources.archive_columns import COLUMNS, find_tardis, live_symbol, read_file
from dataflows.sources.capture import parse_capture
from feedhouse.store.client import warehouse
from feedhouse.store.ledger import LedgerDelta
from feedhouse.store.migrations import apply_migrations
from feedhouse.verify.audit import run_audit
from feedhouse.verify.backfill import backfill_day, day_rows
from feedhouse.verify.backfill_contract import contract_mask, contract_reason
from tests.support.paths import ROOT, SESSIONS

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repo, not an installed package
from bench.archive_gen import binance_day, tardis_day  # noqa: E402

DAY = date(2025, 11, 20)
ROWS = 50_000


def connect(settings):
    return lambda: warehouse(settings)


def stored(settings, venue: str, feed: str | None = None) -> tuple[int, float, int]:
    """(rows, sum(price*amount), distinct keys) of a venue (and feed)."""
    where = "venue = {v:String}" + (" AND feed = {f:String}" if feed else "")
    with warehouse(settings) as client:
        rows, notional, keys = client.query(
            f"SELECT count(), sum(price * amount), uniqExact(symbol, trade_id) FROM market.trades "
            f"WHERE {where}", parameters={"v": venue, "f": feed or ""}).result_rows[0]
    return int(rows), float(notional or 0.0), int(keys)


def test_generated_binance_day_loads_exactly_and_a_second_run_adds_nothing(settings, tmp_path):
    written = binance_day(tmp_path / "data" / "spot" / "daily" / "trades", DAY, ROWS)
    assert written.path.name == "BTCUSDT-trades-2025-11-20.zip"
    first = backfill_day(connect(settings), "binance", DAY, tmp_path, chunk_rows=20_000)
    assert (first.total("read"), first.total("inserted"), first.total("existing")) == (ROWS, ROWS, 0)
    rows, notional, keys = stored(settings, "binance")
    assert rows == keys == written.rows == ROWS
    assert notional == pytest.approx(written.notional, rel=1e-12)
    second = backfill_day(connect(settings), "binance", DAY, tmp_path, chunk_rows=20_000)
    assert (second.total("inserted"), second.total("existing"), second.total("repeated")) == (0, ROWS, 0)
    assert stored(settings, "binance")[0] == ROWS
    with warehouse(settings) as client:
        (inserted,) = client.query("SELECT sum(inserted) FROM ops.ingest_ledger "
                                   "WHERE feed = 'backfill:binance'").result_rows[0]
        assert inserted == ROWS  # ledger rows of the retried chunks were dropped by token
        assert run_audit(client, full=True).ok
        sample = client.query("SELECT symbol, native_symbol, trade_id, side FROM market.trades "
                              "WHERE trade_id = '5000000001'").result_rows
    with zipfile.ZipFile(written.path) as archive:
        line = archive.read(archive.namelist()[0]).decode().splitlines()[1].split(",")
    assert line[0] == "5000000001"
    side = "sell" if line[5] == "True" else "buy"  # the buyer was the maker: the taker sold
    assert sample == [("BTC-USDT", "BTCUSDT", "5000000001", side)]


@pytest.mark.parametrize(("folder", "venue", "symbol", "kind", "header", "unit"), [
    ("futures/um/daily/aggTrades", "binance_futures", "ETHUSDT", "aggTrades", True, "ms"),
    ("futures/cm/daily/trades", "binance_delivery", "BTCUSD_PERP", "trades", True, "us"),
    ("spot/daily/aggTrades", "binance", "SOLUSDT", "aggTrades", False, "ms"),
])
def test_binance_dump_flavours(settings, tmp_path, folder, venue, symbol, kind, header, unit):
    written = binance_day(tmp_path / folder, DAY, 3_000, symbol=symbol, kind=kind, header=header,
                          unit=unit, zipped=not header)
    result = backfill_day(connect(settings), venue, DAY, tmp_path)
    assert result.total("inserted") == 3_000
    rows, notional, _ = stored(settings, venue)
    with warehouse(settings) as client:
        native_notional, value = client.query(
            "SELECT sum(price * native_amount), sum(native_amount * contract_size) "
            "FROM market.trades WHERE venue = {v:String}", parameters={"v": venue}).result_rows[0]
    # the archive's sizes are kept; COIN-M contracts (100 USD) are BASE in `amount`
    assert rows == 3_000 and native_notional == pytest.approx(written.notional, rel=1e-12)
    # (inverse amounts are rounded to the satoshi, as live)
    assert notional == pytest.approx(value if venue == "binance_delivery" else written.notional,
                                      rel=1e-5)
    with warehouse(settings) as client:
        (symbols, first_day) = client.query(
            "SELECT groupUniqArray(symbol), toDate(min(exchange_ts)) FROM market.trades "
            "WHERE venue = {v:String}", parameters={"v": venue}).result_rows[0]
    assert symbols == [live_symbol(venue, symbol)] and first_day == DAY  # ms read as ms


def test_tardis_files_of_two_venues_load_exactly_and_once(settings, tmp_path):
    coinbase = tardis_day(tmp_path / "tardis", "coinbase", "BTC-USD", DAY, 20_000)
    kraken = tardis_day(tmp_path / "tardis", "kraken", "XBT/USD", DAY, 20_000, with_ids=False, seed=3)
    assert coinbase.path.name == "coinbase_trades_2025-11-20_BTC-USD.csv.gz"
    for venue, written, symbol in (("coinbase_exchange", coinbase, "BTC-USD"), ("kraken", kraken, "BTC-USD")):
        result = backfill_day(connect(settings), venue, DAY, tmp_path)
        assert [f.kind for f in result.files] == ["tardis"]
        assert result.total("inserted") == written.rows == 20_000
        rows, notional, keys = stored(settings, venue)
        assert rows == keys == written.rows
        assert notional == pytest.approx(written.notional, rel=1e-12)
        again = backfill_day(connect(settings), venue, DAY, tmp_path)
        assert (again.total("inserted"), again.total("existing")) == (0, written.rows)
        with warehouse(settings) as client:
            assert client.query("SELECT DISTINCT symbol FROM market.trades WHERE venue = {v:String}",
                                parameters={"v": venue}).result_rows == [(symbol,)]
    assert stored(settings, "kraken")[0] == 20_000


def _tardis_name(venue: str, native: str) -> tuple[str, str]:
    """(Tardis exchange, Tardis symbol) of a live venue and native symbol."""
    return {"coinbase_exchange": ("coinbase", native), "kraken": ("kraken", native),
            "bitstamp": ("bitstamp", native.upper())}[venue]


def write_tardis(folder: Path, venue: str, trades, *, with_ids: bool) -> list[Path]:
    """The trades as Tardis.dev would publish them: one file per symbol and day."""
    by_file: dict[tuple[str, str, date], list[str]] = defaultdict(list)
    for t in trades:
        exchange, symbol = _tardis_name(venue, t.native_symbol)
        day = datetime.fromtimestamp(t.exchange_ts / 1e6, UTC).date()
        ident = t.trade_id if with_ids else ""
        by_file[(exchange, symbol, day)].append(
            f"{exchange},{symbol},{t.exchange_ts},{t.received_ts},{ident},{t.side},{t.price!r},{t.amount!r}")
    paths = []
    for (exchange, symbol, day), lines in by_file.items():
        path = folder / f"{exchange}_trades_{day}_{symbol.replace('/', '-')}.csv.gz"
        path.write_bytes(gzip.compress(
            ("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n" + "\n".join(lines) + "\n").encode()))
        paths.append(path)
    return paths


def store_live(settings, venue: str, trades) -> None:
    """Store trades as the live sink does (feed `<venue>-live`, ledger counted)."""
    feed = f"{venue}-live"
    batch = make_batch(TRADES, feed, f"live-{venue}", rows_table(TRADES, trades, extra={"feed": feed}))
    ledger = LedgerDelta()
    ledger.add_minutes(feed, batch.minutes, "parsed")
    ledger.add_minutes(feed, batch.minutes, "inserted")
    with warehouse(settings) as client:
        apply_migrations(client)
        client.insert_arrow(LEDGER_TABLE, ledger_table(ledger))
        client.insert_arrow(TRADES, batch.data, settings={"insert_deduplication_token": batch.token})


@pytest.mark.parametrize(("capture", "venue", "with_ids"), [
    ("COINBASE.ws.28.0", "coinbase_exchange", True),
    ("KRAKEN.ws.48.0", "kraken", False),  # Kraken v1 has no trade id: Tardis leaves it empty
    ("BITSTAMP.ws.1.0", "bitstamp", True),  # Tardis spells BTCUSD, the live feed btcusd
])
def test_a_live_recorded_day_and_a_tardis_day_of_the_same_trades_meet(settings, tmp_path, capture, venue, with_ids):
    _, parsed, _ = parse_capture(SESSIONS / capture, venue)
    live = parsed.trades
    day = datetime.fromtimestamp(live[0].exchange_ts / 1e6, UTC).date()
    store_live(settings, venue, live)
    archive = tmp_path / "tardis"
    archive.mkdir()
    write_tardis(archive, venue, live, with_ids=with_ids)
    result = backfill_day(connect(settings), venue, day, archive)
    assert result.total("read") == len(live)
    assert (result.total("inserted"), result.total("existing")) == (0, len(live))
    rows, _, keys = stored(settings, venue)
    assert rows == keys == len(live)
    with warehouse(settings) as client:
        assert day_rows(client, venue, day) == len(live)
        assert run_audit(client, full=True).ok


def test_tardis_ids_without_a_live_day_are_stable_hashes(settings, tmp_path):
    _, parsed, _ = parse_capture(SESSIONS / "KRAKEN.ws.48.0", "kraken")
    write_tardis(tmp_path, "kraken", parsed.trades, with_ids=False)
    day = date(2021, 4, 17)
    first = backfill_day(connect(settings), "kraken", day, tmp_path)
    again = backfill_day(connect(settings), "kraken", day, tmp_path)
    assert first.total("inserted") == len(parsed.trades) and again.total("inserted") == 0
    with warehouse(settings) as client:
        ids = client.query("SELECT trade_id, symbol FROM market.trades ORDER BY exchange_ts").result_rows
    assert len({i for i, _ in ids}) == len(parsed.trades) and all(len(i) == 24 for i, _ in ids)
    assert {s for _, s in ids} == {t.symbol for t in parsed.trades}  # XBT -> BTC as live


def test_live_symbol_is_what_each_adapter_stores(tmp_path):
    """The probe frames ask each venue's own parse: for every recorded trade, the symbol
    the backfill derives from its native spelling is the symbol the live adapter stored."""
    for capture, venue in (("BINANCE.ws.1.0", "binance"), ("BINANCE_FUTURES.ws.1.0", "binance_futures"),
                           ("COINBASE.ws.28.0", "coinbase_exchange"), ("KRAKEN.ws.48.0", "kraken"),
                           ("OKX.ws.1.0", "okx"), ("BYBIT.ws.25.0", "bybit"),
                           ("BITSTAMP.ws.1.0", "bitstamp"), ("GEMINI.ws.1.0", "gemini"),
                           ("GATEIO.ws.1.0", "gateio"), ("BITMEX.ws.1.0", "bitmex"),
                           ("BITGET.ws.1.0", "bitget")):
        _, parsed, _ = parse_capture(SESSIONS / capture, venue)
        seen = {(t.native_symbol, t.symbol) for t in parsed.trades}
        assert seen, capture
        for native, symbol in seen:
            assert live_symbol(venue, native) == symbol, (capture, native)


def test_contract_mask_agrees_with_the_pydantic_model_row_by_row():
    good = dict(symbol="BTC-USDT", native_symbol="BTCUSDT", trade_id="1", price=1.5, amount=2.0,
                side="buy", exchange_ts=1_700_000_000_000_000, received_ts=1_700_000_000_000_000,
                hashed=False)
    variants = [{}, {"price": 0.0}, {"price": -1.0}, {"price": float("nan")}, {"amount": float("inf")},
                {"side": "Buy"}, {"side": "unknown"}, {"symbol": "btc-usdt"}, {"symbol": "BTCUSDT"},
                {"symbol": "BTC-USDT-PERP"}, {"trade_id": ""}, {"trade_id": "x" * 129},
                {"trade_id": "x" * 128}, {"native_symbol": ""}, {"exchange_ts": 1_000_000},
                {"exchange_ts": 1_230_940_800_000_000}, {"received_ts": 0}, {"symbol": "A.B-C"}]
    rows = [{**good, **v} for v in variants]
    cols = pa.Table.from_pylist(rows, schema=COLUMNS)
    mask = contract_mask("binance", cols).to_pylist()
    verdicts = [contract_reason("binance", row) is None for row in rows]
    assert mask == verdicts
    assert verdicts.count(True) == 6
    assert "price" in contract_reason("binance", rows[1]) and "greater than 0" in contract_reason("binance", rows[1])
    assert contract_mask("", cols).to_pylist() == [False] * len(rows)


def test_refused_rows_go_to_the_dead_letter_with_their_reason(settings, tmp_path):
    folder = tmp_path / "spot"
    folder.mkdir()
    t0 = int(datetime(2024, 1, 15, tzinfo=UTC).timestamp() * 1_000_000)
    lines = [f"{i},42000.5,0.5,21000.25,{t0 + i},false,true" for i in range(1, 9)]
    lines[2] = f"3,0,0.5,0,{t0 + 3},false,true"  # price 0
    lines[5] = f"6,42000.5,-1,0,{t0 + 6},true,true"  # negative amount
    lines.append(lines[0])  # a repeat
    with zipfile.ZipFile(folder / "BTCUSDT-trades-2024-01-15.zip", "w") as archive:
        archive.writestr("BTCUSDT-trades-2024-01-15.csv", "\n".join(lines) + "\n")
    result = backfill_day(connect(settings), "binance", date(2024, 1, 15), tmp_path)
    assert (result.total("read"), result.total("repeated"), result.total("invalid"),
            result.total("inserted")) == (9, 1, 2, 6)
    again = backfill_day(connect(settings), "binance", date(2024, 1, 15), tmp_path)
    assert (again.total("invalid"), again.total("existing"), again.total("inserted")) == (2, 6, 0)
    with warehouse(settings) as client:
        dead = client.query("SELECT raw, error FROM ops.dead_letter WHERE feed = 'backfill:binance' "
                            "ORDER BY error").result_rows
    assert len(dead) == 2  # the rerun's dead letters were dropped by their token
    assert ['"trade_id":"6"' in raw for raw, _ in dead] == [True, False]
    assert dead[0][1].startswith("market.trades contract: amount: Input should be greater than 0")
    assert dead[1][1].startswith("market.trades contract: price: Input should be greater than 0")


@pytest.mark.parametrize(("exchange", "venue", "symbol", "contract"), [
    ("deribit", "deribit", "BTC-PERPETUAL", (1.0, True)),  # USD amounts, many under 1e-4 BTC
    ("bybit", "bybit", "BTCUSD", (1.0, True)),  # Tardis `bybit` USD names: the inverse market
    ("okex-swap", "okx", "BTC-USDT-SWAP", (0.01, False)),  # linear: the shipped OKX list
    ("okex-futures", "okx", "BTC-USD-220527", (100.0, True)),
    ("bybit", "bybit", "BTCUSDT", (1.0, False)),  # linear, already BASE
])
def test_tardis_contract_sizes_are_base_as_live(tmp_path, exchange, venue, symbol, contract):
    """Tardis amounts of contract venues become BASE with the live adapters' specs, row
    for row what the live adapter stores (Spec.base), the archive's size kept."""
    written = tardis_day(tmp_path, exchange, symbol, DAY, 4_000, start_price=30_000.0)
    (file,) = find_tardis(tmp_path, DAY, venue)
    cols = read_file(file)
    spec = live_spec(venue, symbol)
    assert (spec.contract_size, spec.inverse) == contract
    natives = cols["native_amount"].to_pylist()
    prices = cols["price"].to_pylist()
    # the archive's sizes, as written
    assert sum(a * p for a, p in zip(natives, prices, strict=True)) == pytest.approx(written.notional)
    assert cols["amount"].to_pylist() == [spec.base(a, p) for a, p in zip(natives, prices, strict=True)]
    assert set(cols["contract_size"].to_pylist()) == {contract[0]}
    assert cols["symbol"][0].as_py() == spec.symbol == live_symbol(venue, symbol)
    if contract[1]:
        assert spec.symbol.split("-")[2] == "INV" and min(cols["amount"].to_pylist()) < 1e-4


@pytest.mark.parametrize(("venue", "native", "sizes"), [
    ("bybit", "BTCUSD", (1, 12)),  # 1 USD contracts: mostly under 1e-4 BTC (6 digits)
    ("deribit", "BTC-PERPETUAL", (10, 5_000)),
    ("okx", "ETH-USDT-SWAP", (1, 500)),  # linear: contracts x ctVal
])
def test_to_base_is_spec_base_on_every_row(venue, native, sizes):
    """The vectorised conversion gives exactly what the live adapter stores, row by row."""
    rng = np.random.default_rng(5)
    n = 50_000
    amount = np.round(rng.uniform(*sizes, n))
    price = np.round(rng.uniform(1_000, 150_000, n), 1)
    got, kept, used = to_base(venue, pa.array([native] * n), pa.array(price), pa.array(amount))
    spec = live_spec(venue, native)
    assert got.to_pylist() == [spec.base(a, p) for a, p in zip(amount.tolist(), price.tolist(), strict=True)]
    assert kept.to_pylist() == amount.tolist() and set(used.to_pylist()) == {spec.contract_size}
