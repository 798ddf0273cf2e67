"""The Dagster backfill job loads Tardis incremental_book_L2 files: a day x venue partition
run in process on a chDB store stores every distinct level update read once, with its
ledger rows; the second run stores nothing; the materialization reports the reconciliation
and the partition's quality suites."""

from __future__ import annotations

import pytest
from dagster import MultiPartitionKey

from orchestration.definitions import defs
from orchestration.keys import BACKFILL_KEY, BOOKS_BACKFILL_KEY
from tests.support.dagster_seed import query

pytestmark = pytest.mark.integration

DAY_US = 1_709_251_200_000_000  # 2024-03-01T00:00:00Z
PARTITION = MultiPartitionKey({"date": "2024-03-01", "venue": "okx"})
HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
BOOKS = "market__book_updates_backfill"


def _row(second: float, snapshot: bool, side: str, price: str, amount: str) -> str:
    ts = DAY_US + int(second * 1_000_000)
    return f"okex,BTC-USDT,{ts},{ts + 900},{str(snapshot).lower()},{side},{price},{amount}\n"


def books_file(folder):
    """A snapshot at 10:00 (3 bids, 3 asks), then updates; one line twice, one of the day
    before (neither may be stored)."""
    rows = [_row(36_000, True, s, p, a) for s, p, a in (
        ("bid", "62000.1", "1.5"), ("bid", "61999.9", "0.25"), ("bid", "61999.0", "3"),
        ("ask", "62000.2", "0.8"), ("ask", "62000.5", "2"), ("ask", "62001.0", "4.125"))]
    rows += [_row(36_001.5, False, "bid", "62000.1", "0"), _row(36_001.5, False, "ask", "62000.3", "1"),
             _row(36_002, False, "bid", "62000.0", "0.5"), _row(36_003.25, False, "ask", "62000.2", "0")]
    rows.append(rows[-1])
    before = _row(-1, False, "bid", "61000", "1")
    path = folder / "okex_incremental_book_L2_2024-03-01_BTC-USDT.csv"
    path.write_text(HEADER + before + "".join(rows))
    return path


def stored(settings):
    return query(settings,
                 "SELECT count(), uniqExact(symbol, exchange_ts, side, price, amount), "
                 "(SELECT sum(inserted) FROM ops.ingest_ledger WHERE feed = 'backfill:okx') "
                 "FROM market.book_updates WHERE venue = 'okx' AND feed = 'backfill:okx'")[0]


def run_job():
    return defs.resolve_job_def("backfill_archives").execute_in_process(
        partition_key=PARTITION, raise_on_error=False)


def test_the_backfill_job_loads_a_tardis_book_day_once(dagster_env, tmp_path, monkeypatch):
    archive = tmp_path / "tardis"
    archive.mkdir()
    books_file(archive)
    monkeypatch.setenv("FEEDHOUSE_ARCHIVE_DIR", str(archive))

    first = run_job()
    assert first.success
    # a day of book files only: the trade backfill has nothing to load and is not materialized
    assert first.asset_materializations_for_node("market__trades_backfill") == []
    (mat,) = first.asset_materializations_for_node(BOOKS)
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert (meta["files"], meta["rows_read"], meta["repeated_in_archive"]) == (1, 11, 1)
    assert (meta["rows_inserted"], meta["already_stored"]) == (10, 0)
    assert (meta["day_rows_before"], meta["day_rows_after"]) == (0, 10)
    assert "| okex_incremental_book_L2_2024-03-01_BTC-USDT.csv | 11 | 10 | 0 | 1 |" in meta["per_file"]
    assert meta["quality"].startswith("```\nok:") and meta["quality_run_id"]
    assert stored(dagster_env) == (10, 10, 10)  # rows read (distinct) = rows stored = ledger
    (book,) = query(dagster_env, "SELECT count(), min(exchange_ts), max(is_snapshot) FROM "
                                 "market.book_updates WHERE price = 62000.3")
    assert book[0] == 1 and str(book[1]) == "2024-03-01 10:00:01.500000" and book[2] == 0

    second = run_job()
    assert second.success
    (mat,) = second.asset_materializations_for_node(BOOKS)
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert (meta["rows_read"], meta["rows_inserted"], meta["already_stored"]) == (11, 0, 10)
    assert (meta["day_rows_before"], meta["day_rows_after"]) == (10, 10)
    assert stored(dagster_env) == (10, 10, 10)  # nothing stored twice, ledger unchanged


def test_the_launchpad_picks_books_alone_and_a_bad_file_fails_the_partition(
        dagster_env, tmp_path, monkeypatch):
    archive = tmp_path / "tardis"
    archive.mkdir()
    path = books_file(archive)
    monkeypatch.setenv("FEEDHOUSE_ARCHIVE_DIR", str(archive))
    job = defs.resolve_job_def("backfill_archives")
    picked = job.execute_in_process(partition_key=PARTITION, asset_selection=[BOOKS_BACKFILL_KEY])
    assert picked.success and [e.asset_key for e in picked.get_asset_materialization_events()] \
        == [BOOKS_BACKFILL_KEY]
    assert BACKFILL_KEY not in {e.asset_key for e in picked.get_asset_materialization_events()}

    path.write_text(HEADER + _row(36_000, True, "bid", "62000", "-1"))  # a negative size
    failed = job.execute_in_process(partition_key=PARTITION, asset_selection=[BOOKS_BACKFILL_KEY],
                                    raise_on_error=False)
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    assert "backfill okx 2024-03-01: Tardis book file" in failure.step_failure_data.error.message
    assert "amounts >= 0" in failure.step_failure_data.error.message
