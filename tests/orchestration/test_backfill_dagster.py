"""The Dagster backfill partition runs the columnar backfill: a Tardis.dev file of a day
loads through `market/trades_backfill`, the materialization reports rows/s, a partition
without archive files fails with the one-line reason (trades and books alike)."""

from __future__ import annotations

import sys
from datetime import date

import pytest
from dagster import MultiPartitionKey

from orchestration.definitions import defs
from tests.support.dagster_seed import query
from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repo, not an installed package
from bench.archive_gen import tardis_day  # noqa: E402

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

DAY = date(2024, 3, 1)


def materialize(day: str, venue: str):
    key = MultiPartitionKey({"date": day, "venue": venue})
    return defs.resolve_job_def("backfill_archives").execute_in_process(
        partition_key=key, raise_on_error=False)


def test_a_tardis_partition_loads_and_reports_rows_per_s(dagster_env, tmp_path, monkeypatch):
    archive = tmp_path / "archive"
    written = tardis_day(archive, "okex", "BTC-USDT", DAY, 4_000)
    monkeypatch.setenv("FEEDHOUSE_ARCHIVE_DIR", str(archive))
    result = materialize(DAY.isoformat(), "okx")
    assert result.success
    meta = result.asset_materializations_for_node("market__trades_backfill")[0].metadata
    assert meta["rows_inserted"].value == 4_000 and meta["day_rows_after"].value == 4_000
    assert meta["rows_per_s"].value > 0 and meta["seconds"].value > 0
    assert "rows/s" in meta["per_file"].value
    (rows, notional) = query(dagster_env, "SELECT count(), sum(price * amount) FROM market.trades "
                                          "WHERE feed = 'backfill:okx'")[0]
    assert rows == 4_000 and abs(notional - written.notional) < 1e-6 * written.notional


def test_a_partition_without_archive_files_fails_saying_so(dagster_env, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("FEEDHOUSE_ARCHIVE_DIR", str(empty))
    result = materialize(DAY.isoformat(), "okx")
    assert not result.success
    failed = {e.step_key: str(e.step_failure_data.error.message)
              for e in result.all_events if e.is_step_failure}
    # no file of either kind: both backfills of the job fail, each naming what it looked for
    text = failed["market__trades_backfill"]
    assert "no archive file for venue okx on 2024-03-01" in text and str(empty) in text
    books = failed["market__book_updates_backfill"]
    assert "no Tardis incremental_book_L2 file of okx for 2024-03-01" in books and str(empty) in books
