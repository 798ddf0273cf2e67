"""The Dagster definitions draw one connected lineage, start quiet on the embedded store, and
every job launches without hidden tags."""

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus

from orchestration.definitions import defs
from orchestration.keys import AUDIT_KEY, BACKFILL_KEY, RECON_KEY, REPORT_KEY
from tests.support.cli import clean_env
from tests.support.paths import ROOT

TRADES = AssetKey(["market", "trades"])


def ancestors(key: AssetKey) -> set[AssetKey]:
    graph = defs.resolve_asset_graph()
    seen: set[AssetKey] = set()
    todo = [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def test_report_descends_from_every_source_through_audit_reconciliation_and_quality():
    graph = defs.resolve_asset_graph()
    sources = [AssetKey(p) for p in (["market", "trades"], ["market", "quotes"], ["iot", "readings"],
                                     ["market", "book_updates"], ["ops", "ingest_ledger"],
                                     ["ops", "dead_letter"], ["ops", "replay_log"])]
    assert set(sources) <= graph.get(AUDIT_KEY).parent_keys
    assert AUDIT_KEY in graph.get(RECON_KEY).parent_keys
    quality = AssetKey(["ops", "quality_results"])
    assert RECON_KEY in graph.get(quality).parent_keys
    assert {AUDIT_KEY, RECON_KEY, quality} <= graph.get(REPORT_KEY).parent_keys
    assert {*sources, AUDIT_KEY, RECON_KEY, quality, BACKFILL_KEY} <= ancestors(REPORT_KEY)
    assert graph.get(TRADES).parent_keys == {BACKFILL_KEY}
    assert graph.get(AssetKey(["market", "ohlcv_1m"])).parent_keys == {TRADES}
    # every asset is connected to the report, except the candles (a leaf beside the audit)
    islands = set(graph.get_all_asset_keys()) - ancestors(REPORT_KEY) - {REPORT_KEY}
    assert islands == {AssetKey(["market", "ohlcv_1m"])}


def test_freshness_checks_sit_on_trades_quotes_and_readings():
    checks = {(k.asset_key, k.name) for c in defs.asset_checks or [] for k in c.check_keys}
    for table in (["market", "trades"], ["market", "quotes"], ["iot", "readings"]):
        assert (AssetKey(table), "fresh") in checks
    observe = defs.resolve_job_def("observe_tables")
    assert {k.name for k in observe.asset_layer.asset_graph.asset_check_keys} >= {"fresh"}


def test_embedded_store_starts_with_schedules_and_polling_sensors_stopped():
    schedules = [defs.resolve_schedule_def(s.name) for s in defs.schedules or []]
    assert len(schedules) == 5
    assert {s.default_status for s in schedules} == {DefaultScheduleStatus.STOPPED}
    assert defs.resolve_sensor_def("replay_log_sensor").default_status == DefaultSensorStatus.STOPPED
    # the run-failure sensor reads only Dagster's run storage: on everywhere
    failures = defs.resolve_sensor_def("failed_runs_to_clickhouse")
    assert failures.default_status == DefaultSensorStatus.RUNNING


@pytest.mark.integration
def test_production_and_the_setting_turn_automation_on(tmp_path):
    code = ("from orchestration.definitions import defs; "
            "print(sorted({s.default_status.value for s in defs.schedules}), "
            "defs.resolve_sensor_def('replay_log_sensor').default_status.value)")

    def statuses(**env):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, timeout=120,
                              env=clean_env(FEEDHOUSE_HOME=str(tmp_path), **env))
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    assert statuses(FEEDHOUSE_WAREHOUSE_DSN="http://default:pw@127.0.0.1:8123/default") == \
        "['RUNNING'] RUNNING"
    assert statuses(FEEDHOUSE_DAGSTER_AUTOMATION="on") == "['RUNNING'] RUNNING"
    assert statuses() == "['STOPPED'] STOPPED"


def test_audit_report_job_defaults_to_todays_partition():
    job = defs.resolve_job_def("audit_report")
    today = datetime.now(UTC).date().isoformat()
    assert job.tags["dagster/partition"] == today
    assert job.partitions_def is not None and job.partitions_def.has_partition_key(today)
    schedule = defs.resolve_schedule_def("audit_report_daily")
    assert schedule.cron_schedule == "20 0 * * *"
