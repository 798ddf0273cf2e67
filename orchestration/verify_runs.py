"""Verify a finished ingest as runs of the project's Dagster instance (what `feedhouse demo`
does after its feeds stop), so the Dagster UI opened on that instance shows the proof.

In order, each an in-process run (in_process_executor: the embedded store is opened by
one process at a time, and a run's steps are short):

1. `observe_tables`     every table observed (row counts, last event time, lag) and the
                        `fresh` checks on trades, quotes and readings;
2. `row_count_audit`    every closed minute audited (the ingest has stopped, so every
                        minute up to the newest is closed) and `row_counts_match_ledger`;
3. `reconcile_replays`  one run per finished buffer replay (as replay_log_sensor would
                        launch them, tagged with the replay id);
4. `data_quality`       every Great Expectations suite over the ingest's window;
5. `audit_report`       today's partition of the report.

A run that fails is written to ops.failed_runs and logged, like the run-failure sensor
does for runs the daemon sees. What the runs found comes back from their events (the
materialization and check metadata the UI shows), not from a second computation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import Config, DagsterInstance, RunConfig

from feedhouse.core.config import load_settings
from feedhouse.core.settings import Settings
from feedhouse.store.client import warehouse
from feedhouse.verify.reconcile import finished_replays
from orchestration.assets.audit import AuditConfig
from orchestration.assets.reconcile import ReconcileConfig
from orchestration.definitions import defs
from orchestration.quality_checks import QualityWindowConfig
from orchestration.resources import current_environment, resources_for
from orchestration.run_failures import first_line, record_failed_run, step_failures

log = logging.getLogger("feedhouse.verify_runs")
DAGSTER_HOME = "dagster_home"  # under the feedhouse home: the instance `make ui` opens
QUIET = {"console": {"config": {"log_level": "ERROR"}}}  # the caller prints what was found


def instance_dir(settings: Settings) -> Path:
    return settings.home / DAGSTER_HOME


INSTANCE_YAML = """\
# Dagster instance of feedhouse's embedded store (written by `feedhouse demo`; `make ui`
# opens it). Storage: SQLite files in this folder (the default).
# Telemetry off: a local demo instance reports nothing to Dagster Labs, and each event it
# would log is one more file write on a small machine.
telemetry:
  enabled: false
"""


def open_instance(settings: Settings) -> DagsterInstance:
    """The persistent instance under <home>/dagster_home (SQLite storage; created on first
    use with a dagster.yaml, kept when one exists)."""
    folder = instance_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_YAML)
    return DagsterInstance.from_config(str(folder))


@dataclass
class RunOutcome:
    job: str
    run_id: str
    success: bool
    seconds: float
    error: str = ""


@dataclass
class Verification:
    """What the Dagster runs found, read from their events."""

    instance: Path
    runs: list[RunOutcome] = field(default_factory=list)
    audit_ran: bool = False
    audit_mismatched: int = 0
    audit_feeds: dict[str, int] = field(default_factory=dict)  # feed -> minutes not ok
    reconciliations: list[dict[str, Any]] = field(default_factory=list)
    suite_state: dict[str, str] = field(default_factory=dict)  # suite -> ok | WARN | ERROR
    report: Path | None = None
    data_docs: Path | None = None
    check_evaluations: int = 0
    checks_failed: list[str] = field(default_factory=list)  # "asset_key check_name"
    failed_runs: list[str] = field(default_factory=list)  # log lines of failed runs

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    @property
    def quality_ok(self) -> bool:
        return bool(self.suite_state) and "ERROR" not in self.suite_state.values()

    def summary(self) -> str:
        ok = sum(r.success for r in self.runs)
        each = ", ".join(f"{r.job} {r.seconds:.1f}s" for r in self.runs)
        return (f"{len(self.runs)} Dagster runs ({ok} succeeded) and {self.check_evaluations} "
                f"asset check evaluations in {self.seconds:.1f}s ({each}), recorded in "
                f"{self.instance}")


def _suite_state(metadata: dict[str, Any]) -> str:
    failed = metadata["failed"].value if "failed" in metadata else []
    if any(f.get("severity") == "ERROR" for f in failed):
        return "ERROR"
    return "WARN" if failed else "ok"


class VerifyRuns:
    def __init__(self, config_path: Path, instance: DagsterInstance | None = None) -> None:
        self.settings = load_settings(config_path)
        self.resources = resources_for(current_environment(), str(config_path))
        self.instance = instance or open_instance(self.settings)
        self.found = Verification(instance_dir(self.settings))

    def run(self, job_name: str, ops: dict[str, Config] | None = None, tags: dict | None = None,
            partition_key: str | None = None):
        job = defs.resolve_job_def(job_name)
        started = time.perf_counter()
        result = job.execute_in_process(
            run_config=RunConfig(ops=ops or {}, loggers=QUIET),
            instance=self.instance,
            resources=self.resources,
            tags=tags,
            partition_key=partition_key,
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        outcome = RunOutcome(job_name, result.run_id, result.success, seconds)
        if not result.success:
            failures = [e for e in result.all_events if e.is_step_failure]
            outcome.error = step_failures(failures)[1] or "failed (see the run in the Dagster UI)"
            try:
                with warehouse(self.settings) as client:
                    line = record_failed_run(client, result.dagster_run, time.time(), failures)
            except Exception as exc:  # the run's own failure is the news; say why it is not stored
                line = (f"run {result.run_id} of job {job_name} failed: {outcome.error} (not "
                        f"written to ops.failed_runs: {first_line(str(exc))})")
                log.error(line)
            self.found.failed_runs.append(line)
        self.found.runs.append(outcome)
        evaluations = result.get_asset_check_evaluations()
        self.found.check_evaluations += len(evaluations)
        self.found.checks_failed += [
            f"{e.asset_key.to_user_string()} {e.check_name}" for e in evaluations if not e.passed
        ]
        return result

    def verify(self, window_minutes: int, ahead_minutes: float = 2.0) -> Verification:
        found = self.found
        self.run("observe_tables")

        audit = self.run("row_count_audit", {"ops__row_count_audit": AuditConfig(
            full=True, grace_s=0.0, ingest_stopped=True)})
        for mat in audit.asset_materializations_for_node("ops__row_count_audit"):
            found.audit_ran = True
            found.audit_mismatched = int(mat.metadata["mismatched"].value)
            found.audit_feeds = {f["feed"]: f["bad_minutes"] for f in mat.metadata["feeds"].value}

        with warehouse(self.settings) as client:
            replays = finished_replays(client, settle_s=0)
        for replay_id, rows in replays.items():
            config = ReconcileConfig(replay_id=replay_id, settle_s=0.0)
            feeds = ",".join(sorted({r.feed for r in rows}))  # one replay may drain many feeds
            tags = {"feedhouse/replay_id": replay_id, "feedhouse/feed": feeds}
            result = self.run("reconcile_replays", {"ops__reconciliation": config}, tags=tags)
            for mat in result.asset_materializations_for_node("ops__reconciliation"):
                found.reconciliations += mat.metadata["results"].value

        quality = self.run("data_quality", {"data_quality_checks": QualityWindowConfig(
            window_minutes=window_minutes, ahead_minutes=ahead_minutes)})
        for evaluation in quality.get_asset_check_evaluations():
            found.suite_state[evaluation.metadata["suite"].value] = _suite_state(evaluation.metadata)
        docs = self.settings.reports_dir / "data_docs" / "index.html"
        found.data_docs = docs if docs.exists() else None

        today = datetime.now(UTC).date().isoformat()
        report = self.run("audit_report", partition_key=today)
        for mat in report.asset_materializations_for_node("reports__audit_report"):
            found.report = Path(mat.metadata["path"].value)
        return found


def verify_with_dagster(config_path: Path, window_minutes: int, ahead_minutes: float = 2.0,
                        instance: DagsterInstance | None = None) -> Verification:
    """Run the verification of a stopped ingest (settings from `config_path`) as Dagster runs."""
    return VerifyRuns(config_path, instance).verify(window_minutes, ahead_minutes)
