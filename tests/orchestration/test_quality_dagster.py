"""Data quality in Dagster, in process against a real chDB store: the suites as asset checks
with their severity and Data Docs link, the 15-minute schedule, the daily report asset, and
the partition check the backfill calls."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, Failure

from feedhouse.core.config import load_settings
from orchestration.definitions import defs
from orchestration.quality_checks import CHECK_NAME, REPORT_KEY, SUITE_KEYS, partition_quality
from orchestration.resources.settings import SettingsResource
from tests.support.quality_seed import (
    at,
    audits,
    ledger,
    quotes,
    readings,
    seed,
    store_settings,
    trades,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dq")
    settings = store_settings(tmp)
    config = tmp / "feedhouse.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "home": str(settings.home),
                "warehouse_dsn": settings.dsn,
                "reports_dir": str(settings.reports_dir),
            }
        )
    )
    return settings, {"settings": SettingsResource(config_path=str(config))}


@pytest.mark.integration
def test_definitions_load_without_great_expectations():
    code = (
        "import sys; from orchestration.definitions import defs; "
        "assert 'great_expectations' not in sys.modules; "
        "import feedhouse.app.cli.main; assert 'great_expectations' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    schedules = {
        n: defs.resolve_schedule_def(n)
        for n in ("data_quality_every_15_minutes", "audit_report_daily")
    }
    assert schedules["data_quality_every_15_minutes"].cron_schedule == "*/15 * * * *"
    assert schedules["data_quality_every_15_minutes"].job_name == "data_quality"
    assert schedules["audit_report_daily"].job_name == "audit_report"
    check_keys = {
        (k.asset_key, k.name) for c in defs.asset_checks or [] for k in c.check_keys
    }  # fmt: skip
    for key in (
        ["market", "trades"],
        ["market", "quotes"],
        ["iot", "readings"],
        ["ops", "ingest_ledger"],
    ):
        assert (AssetKey(key), CHECK_NAME) in check_keys


@pytest.mark.integration
def test_data_quality_job_reports_each_suite_as_a_check(store):
    settings, resources = store
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=30)
    bad = trades(start)
    bad[4]["amount"] = 0.0  # ERROR expectation
    gappy = [r for r in readings(start) if not (r["device_id"] == "dev-000" and r["seq"] == 3)]
    seed(
        settings,
        market_trades=bad,
        market_quotes=quotes(start),
        iot_readings=gappy,  # WARN expectation (sequence gap)
        ops_ingest_ledger=ledger(start.replace(second=0)),
    )
    job = defs.resolve_job_def("data_quality")
    result = job.execute_in_process(resources=resources, instance=DagsterInstance.ephemeral())
    assert result.success  # failing checks are reported, they do not crash the run
    evaluations = {e.asset_key: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == set(SUITE_KEYS.values())
    trades_eval = evaluations[AssetKey(["market", "trades"])]
    assert not trades_eval.passed and trades_eval.severity == AssetCheckSeverity.ERROR
    failed = trades_eval.metadata["failed"].value
    assert failed[0]["expectation"] == "expect_column_values_to_be_between(amount)"
    assert failed[0]["sample"][0]["trade_id"] == bad[4]["trade_id"]
    docs = trades_eval.metadata["data_docs"].value
    assert docs.startswith(str(settings.reports_dir / "data_docs")) and docs.endswith(".html")
    readings_eval = evaluations[AssetKey(["iot", "readings"])]
    assert not readings_eval.passed and readings_eval.severity == AssetCheckSeverity.WARN
    assert evaluations[AssetKey(["market", "quotes"])].passed
    assert evaluations[AssetKey(["ops", "ingest_ledger"])].passed


def test_audit_report_asset_attaches_path_and_summary(store):
    settings, resources = store
    day = "2026-11-20"
    seed(
        settings,
        market_trades=trades(at(8, day)),
        ops_row_count_audit=audits(at(8, day)),
    )
    job = defs.resolve_job_def("audit_report")
    result = job.execute_in_process(
        resources=resources, instance=DagsterInstance.ephemeral(), partition_key=day
    )
    (mat,) = result.asset_materializations_for_node("reports__audit_report")
    assert mat.asset_key == REPORT_KEY
    path = mat.metadata["path"].value
    assert path == str(settings.reports_dir / f"audit-{day}.html")
    assert "30 rows" in mat.metadata["summary"].value
    # No quality check ran over that day: the report says so and the day is not complete.
    assert mat.metadata["complete"].value is False
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "day_complete" and not check.passed
    assert "no quality check ran" in check.metadata["problems"].value


@pytest.mark.integration
def test_partition_quality_fails_a_partition_with_an_error(store):
    settings, _ = store
    day = "2026-11-19"
    rows = trades(at(3, day), venue="kraken", symbols=("BTC-USD",))
    rows[2]["side"] = "long"
    seed(settings, market_trades=rows)
    with pytest.raises(Failure, match=r"expect_column_values_to_be_in_set\(side\)"):
        partition_quality(settings, day, "kraken")
    metadata = partition_quality(settings, day, "binance")  # nothing there: passes
    assert "quality_run_id" in metadata
    assert load_settings  # settings module stays importable alongside Dagster
