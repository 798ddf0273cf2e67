"""`feedhouse backfill` as a user runs it: a fresh store needs no `init`, an archive with no
matching file stops at once with one line, a day whose files hold no trade is reported."""

from __future__ import annotations

import sys
from datetime import date

import pytest

from feedhouse.store.client import warehouse
from tests.support.cli import run_cli
from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repo, not an installed package
from bench.archive_gen import binance_day, tardis_day  # noqa: E402

DAY = date(2025, 11, 20)


@pytest.mark.integration
def test_a_fresh_store_backfills_without_init_and_a_rerun_adds_nothing(settings, tmp_path):
    archive = tmp_path / "archive"
    binance_day(archive / "spot", DAY, 5_000)
    tardis_day(archive / "tardis", "binance", "BTCUSDT", DAY, 10)  # same venue, other format
    env = {"FEEDHOUSE_HOME": str(settings.home)}
    first = run_cli("backfill", "--venue", "binance", "--start", DAY.isoformat(),
                    "--archive", str(archive), timeout=300, **env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "does not exist" not in first.stderr
    assert "rows/s" in first.stderr  # per file and per day (no terminal: lines, not a bar)
    second = run_cli("backfill", "--venue", "binance", "--start", DAY.isoformat(),
                     "--archive", str(archive), timeout=300, **env)
    assert second.returncode == 0, second.stdout + second.stderr
    with warehouse(settings) as client:
        rows, keys = client.query("SELECT count(), uniqExact(symbol, trade_id) FROM market.trades").result_rows[0]
        (migrations,) = client.query("SELECT count() FROM ops.schema_migrations").result_rows[0]
    assert rows == keys == 5_010
    assert migrations >= 7  # applied by the backfill itself


@pytest.mark.integration
def test_an_archive_without_matching_files_exits_1_with_one_line(settings, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "ETHUSDT-trades-2024-01-15.csv").write_text("1,2,3,4,1705276800000,true\n")  # other day
    out = run_cli("backfill", "--venue", "binance", "--start", "2024-01-16", "--end", "2024-01-17",
                  "--archive", str(empty), FEEDHOUSE_HOME=str(settings.home))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert str(empty) in lines[0] and "binance" in lines[0]
    assert "2024-01-16" in lines[0] and "2024-01-17" in lines[0]
    assert out.stdout == ""


@pytest.mark.integration
def test_a_day_whose_files_hold_no_trade_of_it_is_reported(settings, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    # named for 2024-01-15, but every trade is of the 14th: nothing of the day
    (archive / "BTCUSDT-trades-2024-01-15.csv").write_text(
        "\n".join(f"{i},42000.5,0.5,21000.25,{1705276800000 - 1000 * i},false,true" for i in range(1, 5)) + "\n")
    out = run_cli("backfill", "--venue", "binance", "--start", "2024-01-15", "--archive", str(archive),
                  FEEDHOUSE_HOME=str(settings.home), timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "BTCUSDT-trades-2024-01-15.csv holds no binance trade of 2024-01-15" in " ".join(out.stderr.split())
    assert "no binance trade in the archive files of 2024-01-15" in " ".join(out.stdout.split())
