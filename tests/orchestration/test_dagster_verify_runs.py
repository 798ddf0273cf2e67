"""Verification as runs of a persistent Dagster instance (what the demo does), freshness
checks naming the last event time, failed runs in ops.failed_runs, and the sample archive
the demo leaves, backfilled through `dagster asset materialize`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    MultiPartitionKey,
    build_run_status_sensor_context,
)

from feedhouse.app.demo.sample_archive import (
    SAMPLE_DAY,
    SAMPLE_PARTITION,
    SAMPLE_VENUE,
    write_sample_archive,
)
from feedhouse.core.config import load_settings
from orchestration.assets.backfill import ARCHIVE_UNSET
from orchestration.definitions import defs
from orchestration.keys import AUDIT_KEY, RECON_KEY, REPORT_KEY
from orchestration.resources import resources_for
from orchestration.run_failures import failed_runs_sensor
from orchestration.verify_runs import VerifyRuns, verify_with_dagster
from tests.support.cli import clean_env
from tests.support.dagster_seed import FEEDS_YAML, REPLAY_ID, TRADE_FEED, query
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration  # Dagster runs, the webserver and a browser

DAGSTER = str(Path(sys.executable).parent / "dagster")
TRADES = AssetKey(["market", "trades"])


def instance_at(folder: Path) -> DagsterInstance:
    folder.mkdir(parents=True, exist_ok=True)
    return DagsterInstance.from_config(str(folder))


def write_config(path: Path, settings, **extra) -> Path:
    data = yaml.safe_load(FEEDS_YAML)
    data.update(home=str(settings.home), reports_dir=str(settings.reports_dir), **extra)
    path.write_text(yaml.safe_dump(data))
    return path


def test_verification_runs_are_recorded_in_the_instance(seeded, tmp_path):
    config = write_config(tmp_path / "verify.yaml", seeded)
    instance = instance_at(tmp_path / "instance")
    found = verify_with_dagster(config, window_minutes=10, instance=instance)

    jobs = [r.job for r in found.runs]
    assert jobs == ["observe_tables", "row_count_audit", "reconcile_replays", "data_quality",
                    "audit_report"]
    assert all(r.success for r in found.runs), found.runs
    assert found.audit_ran and found.audit_mismatched == 0
    # the feeds, and the candles per venue/symbol (proven like a raw table)
    assert found.audit_feeds == {TRADE_FEED: 0, "plant": 0, "binance/BTC-USDT": 0}
    assert [(r["replay_id"], r["status"]) for r in found.reconciliations] == [(REPLAY_ID, "ok")]
    assert found.report is not None and found.report.exists()
    # the seeded events are from 2024: fresh fails on both feeds, naming the last event time
    assert "market/trades fresh" in found.checks_failed and "iot/readings fresh" in found.checks_failed
    assert found.check_evaluations >= 11

    # what the UI reads: runs, materializations, observations, check evaluations
    stored = {r.job_name: r for r in instance.get_runs()}
    assert set(stored) == set(jobs)
    assert all(r.is_success for r in stored.values())
    reconcile_run = stored["reconcile_replays"]
    assert reconcile_run.tags["feedhouse/replay_id"] == REPLAY_ID
    for key in (AUDIT_KEY, RECON_KEY, REPORT_KEY):
        assert instance.get_latest_materialization_event(key) is not None, key
    observed = instance.fetch_observations(TRADES, limit=1).records[0]
    metadata = observed.asset_observation.metadata
    assert metadata["dagster/row_count"].value == 20 and "lag_seconds" in metadata
    fresh = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(TRADES, "fresh"), limit=1)[0]
    evaluation = fresh.event.dagster_event.event_specific_data
    assert not evaluation.passed
    assert re.fullmatch(rf"stale: {TRADE_FEED}: last event 2024-01-15 10:02:35 UTC, \d+ s ago "
                        r"\(limit 600 s\)", evaluation.description), evaluation.description
    assert evaluation.metadata["last_event_time"].value == 1705312955.0
    ledger_check = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(TRADES, "row_counts_match_ledger"), limit=1)[0]
    assert ledger_check.event.dagster_event.event_specific_data.passed


def test_freshness_threshold_per_feed_from_settings(seeded, tmp_path):
    # feeds[].freshness_s lets one feed be judged leniently (here: years)
    data = yaml.safe_load(FEEDS_YAML)
    data["feeds"][0]["freshness_s"] = 10 * 365 * 86400.0
    config = tmp_path / "lenient.yaml"
    config.write_text(yaml.safe_dump({**data, "home": str(seeded.home)}))
    result = defs.resolve_job_def("observe_tables").execute_in_process(
        resources=resources_for("embedded", str(config)), instance=DagsterInstance.ephemeral())
    evaluations = {e.asset_key: e for e in result.get_asset_check_evaluations()}
    assert evaluations[TRADES].passed
    assert "1 feed(s) fresh; newest event 2024-01-15 10:02:35 UTC" == evaluations[TRADES].description
    readings = evaluations[AssetKey(["iot", "readings"])]
    assert not readings.passed and readings.description.startswith("stale: plant: last event ")


def test_a_failed_run_lands_in_ops_failed_runs_with_one_line(seeded, tmp_path):
    config = write_config(tmp_path / "no-archive.yaml", seeded)
    instance = instance_at(tmp_path / "instance")
    partition = MultiPartitionKey({"date": "2024-01-15", "venue": "binance"})

    # through the demo's runner: the run fails, its one-line reason is recorded
    runner = VerifyRuns(config, instance)
    runner.run("backfill_archives", partition_key=partition)
    (outcome,) = runner.found.runs
    assert not outcome.success and outcome.error == ARCHIVE_UNSET
    rows = query(seeded, "SELECT run_id, job_name, partition, failed_steps, error "
                         "FROM ops.failed_runs FINAL")
    assert rows == [(outcome.run_id, "backfill_archives", "2024-01-15|binance",
                     ["market__book_updates_backfill", "market__trades_backfill"], ARCHIVE_UNSET)]

    # through the run-failure sensor, as the daemon evaluates it for a run of the UI
    failed = defs.resolve_job_def("backfill_archives").execute_in_process(
        resources=resources_for("embedded", str(config)), instance=instance,
        partition_key=partition, raise_on_error=False)
    assert not failed.success
    event = next(e for e in failed.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    with build_run_status_sensor_context(
        sensor_name="failed_runs_to_clickhouse", dagster_event=event, dagster_instance=instance,
        dagster_run=failed.dagster_run, resources=resources_for("embedded", str(config)),
    ) as context:
        failed_runs_sensor(context.for_run_failure())
    rows = dict(query(seeded, "SELECT run_id, error FROM ops.failed_runs FINAL"))
    assert rows == {outcome.run_id: ARCHIVE_UNSET, failed.run_id: ARCHIVE_UNSET}


def test_sample_archive_backfills_its_partition_from_the_cli(initialized, tmp_path):
    archive = write_sample_archive(tmp_path / "home")
    config = write_config(tmp_path / "demo.yaml", initialized, archive_dir=str(archive))
    env = clean_env(FEEDHOUSE_CONFIG=str(config), DAGSTER_HOME=str(tmp_path / "dh"))
    (tmp_path / "dh").mkdir()

    def materialize():
        return subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "orchestration.definitions",
             "--select", "market/trades_backfill", "--partition", SAMPLE_PARTITION],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    first = materialize()
    assert first.returncode == 0, first.stderr[-3000:]
    settings = load_settings(config)
    day = SAMPLE_DAY.isoformat()
    counts = query(settings, "SELECT count(), uniqExact(symbol, trade_id), min(exchange_ts) "
                             f"FROM market.trades WHERE toDate(exchange_ts) = '{day}' "
                             f"AND venue = '{SAMPLE_VENUE}'")[0]
    assert counts[0] == counts[1] == 20 * 91  # 20 laps of the recorded session's 91 trades
    assert counts[2].strftime("%H:%M") == "10:00"
    instance = DagsterInstance.from_config(str(tmp_path / "dh"))
    (run,) = instance.get_runs()
    assert run.is_success and run.tags["dagster/partition"] == SAMPLE_PARTITION
    # the partition's quality check ran and passed (the run would have failed otherwise)
    mat = instance.get_latest_materialization_event(AssetKey(["market", "trades_backfill"]))
    metadata = mat.asset_materialization.metadata
    assert metadata["rows_inserted"].value == 1820
    assert metadata["quality"].value.splitlines()[1].startswith("ok: ")

    again = materialize()  # idempotent: nothing new
    assert again.returncode == 0, again.stderr[-3000:]
    assert query(settings, f"SELECT count() FROM market.trades WHERE venue = '{SAMPLE_VENUE}'"
                 ) == [(1820,)]
