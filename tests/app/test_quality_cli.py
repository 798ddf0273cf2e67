"""`feedhouse check` and `feedhouse report` as a user runs them (subprocess, real chDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.cli import run_cli
from tests.support.quality_seed import at, audits, seed, store_settings, trades

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_check_and_report_commands(tmp_path):
    settings = store_settings(tmp_path)
    env = {
        "FEEDHOUSE_HOME": str(settings.home),
        "FEEDHOUSE_WAREHOUSE_DSN": settings.dsn,
        "FEEDHOUSE_REPORTS_DIR": str(settings.reports_dir),
    }
    recent = trades(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20))
    recent[3]["price"] = -2.0
    seed(settings, market_trades=recent + trades(at(6)), ops_row_count_audit=audits(at(6)))

    bad = run_cli("check", "--minutes", "60", "--suite", "market_trades", **env)
    assert bad.returncode == 1, bad.stderr
    assert "ERROR market_trades: expect_column_values_to_be_between(price): 1 rows" in bad.stdout
    assert f'"trade_id": "{recent[3]["trade_id"]}"' in bad.stdout
    assert "Data Docs: " + str(settings.reports_dir / "data_docs" / "index.html") in bad.stdout

    day = at(6).date().isoformat()
    good = run_cli("check", "--date", day, "--venue", "binance", "--no-docs", **env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok: 23 expectations, 0 failed" in good.stdout  # trades 10, quotes 5, books 8

    rep = run_cli("report", "--date", day, **env)
    assert rep.returncode == 0, rep.stderr
    path = settings.reports_dir / f"audit-{day}.html"
    assert f"report: {path}" in rep.stdout
    assert path.is_file() and "30 rows" in path.read_text()
    # Rows, an ok audit and the partition's passed quality checks: the day is complete.
    assert f"{day}: complete" in rep.stdout
    # a day with nothing ingested is not complete: exit 1, so cron can alert on it
    empty = run_cli("report", "--date", "2099-01-01", **env)
    assert empty.returncode == 1, empty.stdout + empty.stderr
    assert "2099-01-01: NOT complete" in empty.stdout and "no rows were ingested" in empty.stdout
    assert (settings.reports_dir / "audit-2099-01-01.html").is_file()
    kept = run_cli("report", "--date", "2099-01-01", "--allow-incomplete", **env)
    assert kept.returncode == 0 and "NOT complete" in kept.stdout
    usage = run_cli("report", "--date", "20-11-2026", **env)
    assert usage.returncode == 2 and "--date '20-11-2026': expected YYYY-MM-DD" in usage.stderr


def test_check_and_report_on_a_store_without_schema_say_so_in_one_line(tmp_path):
    env = {"FEEDHOUSE_HOME": str(tmp_path / "fresh")}
    for args in (("check", "--no-docs"), ("report",)):
        done = run_cli(*args, **env)
        assert done.returncode == 1
        assert "does not exist" in done.stderr and "Traceback" not in done.stderr, args
        assert len(done.stderr.strip().splitlines()) == 1
