"""The Dagster definitions load and validate, the tables are observed, and `dagster dev` serves
the UI (started on a free loopback port, stopped by its process group)."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import AssetKey, in_process_executor, multiprocess_executor

from feedhouse.app.mqtt.broker import free_port
from orchestration.definitions import defs
from orchestration.partitions import BACKFILL_PARTITIONS
from orchestration.resources import current_environment, executor_for
from tests.support.cli import clean_env
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

DAGSTER = str(Path(sys.executable).parent / "dagster")


def test_definitions_hold_the_jobs_schedules_sensor_and_table_assets():
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"observe_tables", "row_count_audit", "reconcile_replays", "backfill_archives"} <= jobs
    assert defs.resolve_schedule_def("row_count_audit_every_minute").cron_schedule == "* * * * *"
    assert defs.resolve_schedule_def("observe_tables_every_5_minutes").job_name == "observe_tables"
    assert defs.resolve_sensor_def("replay_log_sensor").job_name == "reconcile_replays"
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    for table in (
        "market/trades",
        "market/quotes",
        "market/ohlcv_1m",
        "iot/readings",
        "ops/ingest_ledger",
        "ops/replay_log",
        "ops/row_count_audit",
        "ops/reconciliation",
    ):
        assert AssetKey(table.split("/")) in keys
    assert "2024-01-15|binance" in BACKFILL_PARTITIONS.get_partition_keys()


def test_environment_picks_the_executor(monkeypatch):
    monkeypatch.delenv("FEEDHOUSE_ENV", raising=False)
    monkeypatch.setenv("FEEDHOUSE_WAREHOUSE_DSN", "http://default:pw@127.0.0.1:8123/default")
    assert current_environment() == "production"
    monkeypatch.setenv("FEEDHOUSE_WAREHOUSE_DSN", "chdb:///tmp/x")
    assert current_environment() == "embedded"
    monkeypatch.setenv("FEEDHOUSE_ENV", "production")
    assert current_environment() == "production"
    assert executor_for("embedded") is in_process_executor
    assert executor_for("production") is multiprocess_executor


def test_observation_reports_counts_last_event_and_rows_per_venue(seeded):
    result = defs.resolve_job_def("observe_tables").execute_in_process()
    assert result.success
    seen = {
        "/".join(e.asset_key.path): e.event_specific_data.asset_observation.metadata
        for e in result.get_asset_observation_events()
    }
    trades = seen["market/trades"]
    assert trades["dagster/row_count"].value == 20
    assert trades["last_event_time"].value == 1705312955.0  # 2024-01-15T10:02:35Z
    assert "| binance | 20 |" in trades["rows_per_venue"].value
    assert "| binance-live | 20 |" in trades["rows_per_feed"].value
    assert trades["lag_seconds"].value > 0
    assert seen["iot/readings"]["dagster/row_count"].value == 12
    assert seen["ops/replay_log"]["dagster/row_count"].value == 1


def test_dagster_definitions_validate(tmp_path):
    env = clean_env(DAGSTER_HOME=str(tmp_path), FEEDHOUSE_HOME=str(tmp_path / "fh"))
    done = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "orchestration.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_dagster_dev_serves_the_ui(tmp_path):
    port = free_port()
    env = clean_env(DAGSTER_HOME=str(tmp_path), FEEDHOUSE_HOME=str(tmp_path / "fh"))
    # plain `dagster dev` in the repo root finds the code through workspace.yaml
    proc = subprocess.Popen(
        [DAGSTER, "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, f"dagster dev did not answer (exit code {proc.poll()})"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
