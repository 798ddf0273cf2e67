"""Failed runs become rows of ops.failed_runs (migration 011) and an ERROR line in the log:
the run-failure sensor does it for every run of this code location, and
`record_failed_run` does it for runs executed in process (the demo's verification)."""

import json
import logging
import time
from datetime import UTC, datetime

from dagster import (
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)

from orchestration.resources.warehouse import WarehouseResource

log = logging.getLogger("feedhouse.failed_runs")
TABLE = "ops.failed_runs"
COLUMNS = ["run_id", "job_name", "partition", "failed_ts", "failed_steps", "error", "tags"]
SENSOR_LOCK_TIMEOUT_S = 10.0


def first_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[0][:500] if lines else ""


def failure_row(run: DagsterRun, failed_ts: float, steps: list[str], error: str) -> list:
    return [
        run.run_id,
        run.job_name,
        run.tags.get("dagster/partition", ""),
        datetime.fromtimestamp(failed_ts, UTC),
        steps,
        error,
        json.dumps(dict(run.tags), sort_keys=True),
    ]


def step_failures(events) -> tuple[list[str], str]:
    """(failed step keys, first line of the first step's error) from STEP_FAILURE events."""
    steps, error = [], ""
    for event in events:
        steps.append(event.step_key or "")
        data = event.step_failure_data
        if not error and data is not None:
            user = data.user_failure_data
            error = first_line(user.description if user and user.description else
                               (data.error.message if data.error else event.message))
    return steps, error


def write_failed_run(client, row: list) -> None:
    client.insert(TABLE, [row], column_names=COLUMNS,
                  settings={"insert_deduplication_token": f"failed_run/{row[0]}"})


def log_line(row: list) -> str:
    partition = f" partition {row[2]}" if row[2] else ""
    return f"run {row[0]} of job {row[1]}{partition} failed: {row[5] or 'see the run log'}"


def record_failed_run(client, run: DagsterRun, failed_ts: float, events) -> str:
    """Write one failed run (its STEP_FAILURE events) to ops.failed_runs; the log line."""
    steps, error = step_failures(events)
    row = failure_row(run, failed_ts, steps, error)
    write_failed_run(client, row)
    line = log_line(row)
    log.error(line)
    return line


@run_failure_sensor(
    name="failed_runs_to_clickhouse",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Writes every failed run of this code location to ops.failed_runs (job, "
    "partition, failed steps, first error line) and logs it as an ERROR.",
)
def failed_runs_sensor(context: RunFailureSensorContext, warehouse: WarehouseResource):
    events = context.get_step_failure_events()
    steps, error = step_failures(events)
    if not error:
        error = first_line(context.failure_event.message)
    record = context.instance.get_run_record_by_id(context.dagster_run.run_id)
    failed_ts = record.end_time if record is not None and record.end_time else time.time()
    row = failure_row(context.dagster_run, failed_ts, steps, error)
    line = log_line(row)
    context.log.error(line)
    log.error(line)
    # a busy or unreachable warehouse raises: the tick fails and the sensor retries the run
    with warehouse.open(lock_timeout_s=SENSOR_LOCK_TIMEOUT_S) as client:
        write_failed_run(client, row)


SENSORS = [failed_runs_sensor]
