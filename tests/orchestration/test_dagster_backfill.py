"""Backfills of archive files: a Binance daily dump through the Dagster partition (in process),
captures and overlap with live data through `feedhouse backfill`."""

import shutil
from datetime import date
from pathlib import Path

import pytest
from dagster import MultiPartitionKey

from feedhouse.store.client import warehouse
from feedhouse.verify.audit import run_audit
from feedhouse.verify.backfill import backfill_day
from orchestration.definitions import defs
from tests.support.cli import run_cli
from tests.support.dagster_seed import BASE, cli_env, query
from tests.support.paths import corpus

DAY_MS = 1705276800000  # 2024-01-15T00:00:00Z
PARTITION = MultiPartitionKey({"date": "2024-01-15", "venue": "binance"})
TRADES_HEADER = "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\n"
AGG_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
    "is_buyer_maker,is_best_match\n"
)


def trades_dump(folder: Path, ids: range, *, start_ms: int = DAY_MS + 36_000_000) -> Path:
    """BTCUSDT-trades-2024-01-15.csv as Binance publishes it (no header, ms timestamps)."""
    lines = [
        f"{i},42000.{i % 100:02d},0.0{i % 9 + 1}0,{42 * (i % 9 + 1)}.0,{start_ms + k * 7000},"
        f"{'True' if i % 2 else 'False'},True"
        for k, i in enumerate(ids)
    ]
    path = folder / "BTCUSDT-trades-2024-01-15.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def agg_dump(folder: Path) -> Path:
    """ETHUSDT-aggTrades-2024-01-15.csv, newer style: header row and µs timestamps; one line
    repeated and one trade of the previous day (both must not be stored)."""
    rows = [
        f"{700 + k},2500.5,1.25,{9000 + 2 * k},{9001 + 2 * k},{(DAY_MS + 60_000 * k) * 1000},"
        f"{'true' if k % 2 else 'false'},true"
        for k in range(8)
    ]
    rows.append(rows[3])
    rows.append(f"699,2499.0,1.0,8998,8999,{(DAY_MS - 1000) * 1000},false,true")
    path = folder / "ETHUSDT-aggTrades-2024-01-15.csv"
    path.write_text(AGG_HEADER + "\n".join(rows) + "\n")
    return path


def backfill_partition():
    return defs.resolve_job_def("backfill_archives").execute_in_process(partition_key=PARTITION)


def day_state(settings):
    return query(
        settings,
        "SELECT count(), uniqExact(venue, symbol, trade_id), "
        "(SELECT sum(inserted) FROM ops.ingest_ledger WHERE feed = 'backfill:binance') "
        "FROM market.trades WHERE venue = 'binance' AND toDate(exchange_ts) = '2024-01-15'",
    )[0]


@pytest.mark.integration
def test_binance_dump_partition_loads_once(dagster_env, tmp_path, monkeypatch):
    archive = tmp_path / "archive" / "spot"
    archive.mkdir(parents=True)
    trades_dump(archive, range(100, 130))
    agg_dump(archive)
    monkeypatch.setenv("FEEDHOUSE_ARCHIVE_DIR", str(archive.parent))

    first = backfill_partition()
    assert first.success
    meta = first.asset_materializations_for_node("market__trades_backfill")[0].metadata
    assert meta["rows_inserted"].value == 38  # 30 trades + 8 aggregates
    assert meta["repeated_in_archive"].value == 1
    assert meta["day_rows_after"].value == 38
    assert day_state(dagster_env) == (38, 38, 38)
    stored = query(
        dagster_env,
        "SELECT symbol, trade_id, side, toString(exchange_ts), feed FROM market.trades "
        "WHERE trade_id IN ('101', '703') ORDER BY symbol",
    )
    assert stored == [
        ("BTC-USDT", "101", "sell", "2024-01-15 10:00:07.000000", "backfill:binance"),
        ("ETH-USDT", "703", "sell", "2024-01-15 00:03:00.000000", "backfill:binance"),
    ]

    second = backfill_partition()
    assert second.success
    meta = second.asset_materializations_for_node("market__trades_backfill")[0].metadata
    assert meta["rows_inserted"].value == 0
    assert meta["already_stored"].value == 38
    assert meta["repeated_in_archive"].value == 1  # a property of the archive, run after run
    assert day_state(dagster_env) == (38, 38, 38)  # same rows, same ledger
    with warehouse(dagster_env) as client:
        assert run_audit(client, full=True).ok


@pytest.mark.integration
def test_backfill_over_live_day_and_captures_adds_no_duplicate(seeded, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    # the live feed stored trades 1000..1019 of BTC-USDT on this day; the dump overlaps 1010..1019
    trades_dump(archive, range(1010, 1040), start_ms=int(BASE.timestamp() * 1000))
    cli = run_cli(
        "backfill",
        "--venue",
        "binance",
        "--start",
        "2024-01-15",
        "--archive",
        str(archive),
        **cli_env(),
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert day_state(seeded) == (40, 40, 20)  # 20 live + 20 new, no duplicate
    assert "ok" in cli.stdout

    # a recorded Coinbase Exchange capture of another day (venue coinbase_exchange), loaded twice
    shutil.copy(corpus("COINBASE.ws.28.0"), archive / "COINBASE.ws.28.0")
    loads = [
        backfill_day(lambda: warehouse(seeded), "coinbase_exchange", date(2021, 4, 17), archive)
        for _ in range(2)
    ]
    assert [r.total("inserted") for r in loads] == [107, 0]
    assert loads[1].total("existing") == 107
    (coinbase,) = query(
        seeded,
        "SELECT count(), uniqExact(symbol, trade_id) FROM market.trades "
        "WHERE venue = 'coinbase_exchange'",
    )
    assert coinbase == (107, 107)
    with warehouse(seeded) as client:
        result = run_audit(client, full=True)
    assert result.ok
    assert {s.feed for s in result.by_feed()} >= {
        "backfill:binance",
        "backfill:coinbase_exchange",
        "binance-live",
    }


def test_archive_reader_handles_zip_headers_and_timestamp_units(tmp_path):
    import zipfile

    from dataflows.sources.archive import find_dumps, read_dump
    from dataflows.venues.binance import normalize

    folder = tmp_path / "data" / "futures" / "um" / "daily" / "aggTrades" / "BTCUSDT"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "BTCUSDT-aggTrades-2024-01-15.zip", "w") as archive:
        archive.writestr(
            "BTCUSDT-aggTrades-2024-01-15.csv",
            AGG_HEADER.replace(",is_best_match", "")
            + f"5,42000.1,0.5,10,12,{DAY_MS + 1},true\n"  # milliseconds
            + f"6,42000.2,0.25,13,13,{(DAY_MS + 2) * 1000 + 7},false\n",  # microseconds
        )
    (dump,) = find_dumps(tmp_path, date(2024, 1, 15), "binance_futures")
    assert find_dumps(tmp_path, date(2024, 1, 15), "binance") == []
    trades = list(read_dump(dump, normalize))
    assert [(t.venue, t.symbol, t.trade_id, t.side, t.exchange_ts) for t in trades] == [
        ("binance_futures", "BTC-USDT", "5", "sell", (DAY_MS + 1) * 1000),
        ("binance_futures", "BTC-USDT", "6", "buy", (DAY_MS + 2) * 1000 + 7),
    ]
