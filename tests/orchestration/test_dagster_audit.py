"""Row-count audit through Dagster (in process) and `feedhouse audit`, on a real chDB store."""

from datetime import UTC, datetime

import pytest
from dagster import RunConfig

from orchestration.assets.audit import AuditConfig
from orchestration.definitions import defs
from tests.support.cli import run_cli
from tests.support.dagster_seed import (
    READING_FEED,
    TRADE_FEED,
    add_replay,
    cli_env,
    command,
    query,
)

CANDLES = "binance/BTC-USDT"  # the feed label of the candles' audit rows
LATEST = (
    "SELECT feed, toString(minute), argMax(status, audited_ts), argMax(difference, audited_ts) "
    "FROM ops.row_count_audit GROUP BY feed, minute ORDER BY feed, minute"
)


def run_audit_job(full: bool = False):
    config = RunConfig(ops={"ops__row_count_audit": AuditConfig(full=full)})
    return defs.resolve_job_def("row_count_audit").execute_in_process(run_config=config)


def checks(result) -> dict[str, tuple[bool, dict]]:
    return {
        "/".join(e.asset_key.path): (e.passed, e.metadata)
        for e in result.get_asset_check_evaluations()
    }


@pytest.mark.integration
def test_clean_run_audits_ok_and_deleted_rows_show_as_missing_minutes(seeded):
    result = run_audit_job()
    assert result.success
    rows = query(seeded, LATEST)
    # 3 minutes x 2 feeds, and the 3 candles of binance BTC-USDT (built by the job first)
    assert len(rows) == 9
    assert {r[0] for r in rows} == {TRADE_FEED, READING_FEED, CANDLES}
    assert {r[2] for r in rows} == {"ok"}
    assert all(passed for passed, _ in checks(result).values())
    # an incremental audit right after has nothing new to do
    again = run_audit_job()
    mat = again.asset_materializations_for_node("ops__row_count_audit")[0]
    assert mat.metadata["minutes_audited"].value == 0

    # lose two trades of minute 0 and one of minute 2 (lightweight DELETE)
    command(seeded, "DELETE FROM market.trades WHERE trade_id IN ('1001', '1003', '1011')")
    result = run_audit_job(full=True)
    assert result.success  # the audit ran; the mismatch is reported by the check
    bad = [r for r in query(seeded, LATEST) if r[2] != "ok"]
    assert bad == [
        (TRADE_FEED, "2024-01-15 10:00:00", "missing", -2),
        (TRADE_FEED, "2024-01-15 10:02:00", "missing", -1),
        # the candles built before the loss now count trades their source no longer holds
        (CANDLES, "2024-01-15 10:00:00", "extra", 2),
        (CANDLES, "2024-01-15 10:02:00", "extra", 1),
    ]
    found = checks(result)
    assert not found["market/ohlcv_1m"][0]
    passed, metadata = found["market/trades"]
    assert not passed
    assert metadata["mismatched_minutes"].value == 2
    assert [m["minute"] for m in metadata["first_mismatched_minutes"].value] == [
        "2024-01-15 10:00",
        "2024-01-15 10:02",
    ]
    assert found["iot/readings"][0]  # the readings feed is untouched

    cli = run_cli("audit", "--all", **cli_env())
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "2024-01-15 10:00" in cli.stdout and "2024-01-15 10:02" in cli.stdout
    assert READING_FEED in cli.stdout


@pytest.mark.integration
def test_replay_finished_after_the_audit_reopens_its_minutes(seeded):
    assert run_audit_job().success
    # a replay finishing now stores 3 more rows in minute 1 (ledger counts them too)
    add_replay(seeded, "replay-late", 1, 3, started=datetime.now(UTC))
    result = run_audit_job()
    mat = result.asset_materializations_for_node("ops__row_count_audit")[0]
    assert mat.metadata["minutes_audited"].value == 1
    latest = {(r[0], r[1]): r[2] for r in query(seeded, LATEST)}
    assert latest[(TRADE_FEED, "2024-01-15 10:01:00")] == "ok"
    counts = query(
        seeded,
        "SELECT ledger_count, table_count FROM ops.row_count_audit FINAL "
        f"WHERE feed = '{TRADE_FEED}' AND minute = '2024-01-15 10:01:00'",
    )
    assert counts == [(8, 8)]
