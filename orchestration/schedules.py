"""Schedules: the audit every minute (and in full daily), table observations every 5 minutes.
They start on or off per orchestration.automation (off on the embedded store)."""

from __future__ import annotations

from dagster import RunConfig, ScheduleDefinition

from orchestration.assets.audit import AuditConfig
from orchestration.automation import SCHEDULE_STATUS
from orchestration.jobs import observe_tables_job, row_count_audit_job

row_count_audit_schedule = ScheduleDefinition(
    name="row_count_audit_every_minute",
    job=row_count_audit_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)
# Minutes audited ok are not re-read every minute; once a day the last 26 hours are
# re-audited in full, so rows lost after their minute was audited still surface.
full_audit_schedule = ScheduleDefinition(
    name="row_count_full_audit_daily",
    job=row_count_audit_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    run_config=RunConfig(ops={"ops__row_count_audit": AuditConfig(full=True, lookback_hours=26)}),
    default_status=SCHEDULE_STATUS,
)
observe_tables_schedule = ScheduleDefinition(
    name="observe_tables_every_5_minutes",
    job=observe_tables_job,
    cron_schedule="*/5 * * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)

SCHEDULES = [row_count_audit_schedule, full_audit_schedule, observe_tables_schedule]
