"""Data quality in Dagster: every Great Expectations suite is an asset check on its table,
run by the `data_quality` job every 15 minutes; the daily audit report is an asset.

Great Expectations is imported only when a check runs (quality.gx_engine), never when the
definitions load. Severity: a check fails with ERROR when an ERROR expectation failed, with
WARN when only WARN ones did (per-expectation severity lives in each suite's meta).
"""

from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    ScheduleDefinition,
    asset,
    build_schedule_from_partitioned_job,
    define_asset_job,
    multi_asset_check,
)

from feedhouse.core.settings import Settings
from orchestration.assets.tables import OWNERS, TABLE_KEYS
from orchestration.partitions import BACKFILL_START
from orchestration.resources.settings import SettingsResource
from quality.report import build_report
from quality.runner import run_quality
from quality.suites import suite_tables
from quality.window import Window

CHECK_NAME = "great_expectations"
SUITE_KEYS: dict[str, AssetKey] = {
    suite: TABLE_KEYS.get(table, AssetKey(table.split(".")))
    for suite, table in suite_tables().items()
}
REPORT_KEY = AssetKey(["reports", "audit_report"])
REPORT_PARTITIONS = DailyPartitionsDefinition(start_date=BACKFILL_START, timezone="UTC")


def suite_check_result(res, window_label: str, run_id: str) -> AssetCheckResult:
    """One suite's outcome as the asset check result of its table."""
    failed = [
        {"expectation": o.expectation, "severity": o.severity, "rows": o.unexpected_count,
         "sample": o.sample[:5]}
        for o in res.failed
    ]  # fmt: skip
    metadata = {
        "suite": res.suite.name,
        "window": window_label,
        "rows_checked": res.rows,
        "expectations": len(res.outcomes),
        "failed": MetadataValue.json(failed),
        "quality_run_id": run_id,
    }
    if res.docs_page is not None:
        metadata["data_docs"] = MetadataValue.path(str(res.docs_page))
        metadata["data_docs_url"] = MetadataValue.url(res.docs_page.resolve().as_uri())
    return AssetCheckResult(
        asset_key=SUITE_KEYS[res.suite.name],
        check_name=CHECK_NAME,
        passed=not failed,
        severity=AssetCheckSeverity.ERROR if res.errors else AssetCheckSeverity.WARN,
        metadata=metadata,
    )


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description=f"Great Expectations suite quality/suites/{suite}.json over the last "
            "quality.window_minutes (results in ops.quality_results, Data Docs in "
            "<reports_dir>/data_docs)",
        )
        for suite, key in SUITE_KEYS.items()
    ],
    can_subset=True,
)
def data_quality_checks(context: AssetCheckExecutionContext, settings: SettingsResource):

    selected = {c.asset_key for c in context.selected_asset_check_keys}
    suites = [s for s, key in SUITE_KEYS.items() if key in selected]
    run = run_quality(settings.load(), suites=suites)
    context.log.info(run.summary())
    for res in run.results:
        yield suite_check_result(res, run.window.label(), run.run_id)


def partition_quality(settings: Settings, day: date | str, venue: str) -> dict[str, object]:
    """For the backfill: check one day x venue partition before it is reported done.

    Returns metadata to attach to the partition's materialization; raises dagster.Failure
    (with the failed expectations) when an ERROR expectation failed. Call it outside any
    open warehouse block (it opens the warehouse itself).
    """

    run = run_quality(settings, Window.partition(day, venue), venue_only=True)
    metadata: dict[str, object] = {
        "quality": MetadataValue.md("\n".join(["```", run.summary(), "```"])),
        "quality_run_id": run.run_id,
    }
    if run.docs_index is not None:
        metadata["data_docs"] = MetadataValue.path(str(run.docs_index))
    if not run.ok:
        first = run.summary().splitlines()
        raise Failure(f"quality of partition {day}|{venue}: {'; '.join(first)}", metadata=metadata)
    return metadata


@asset(
    key=REPORT_KEY,
    group_name="reports",
    owners=OWNERS,
    kinds={"html"},
    partitions_def=REPORT_PARTITIONS,
    deps=[
        AssetKey(["ops", "row_count_audit"]),
        AssetKey(["ops", "reconciliation"]),
        *(TABLE_KEYS[t] for t in ("ops.quality_results", "ops.replay_log", "ops.feed_gaps")),
    ],
    check_specs=[
        AssetCheckSpec(
            "day_complete",
            asset=REPORT_KEY,
            description="every audit and reconciliation ok, no ERROR quality check failed",
        )
    ],  # fmt: skip
    description="Self-contained daily audit report <reports_dir>/audit-YYYY-MM-DD.html: rows "
    "per hour, duplicate and invalid rates, ingest lag, gaps, outages with replays and "
    "reconciliations, row-count audits and quality results; opens offline.",
)
def audit_report(context: AssetExecutionContext, settings: SettingsResource):

    day = date.fromisoformat(context.partition_key)
    report = build_report(settings.load(), day)
    problems = report.data.problems()
    yield MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(report.path)),
            "url": MetadataValue.url(report.path.resolve().as_uri()),
            "summary": MetadataValue.md(report.markdown()),
            "complete": report.complete,
            "rows": report.data.total_rows,
        },
    )
    yield AssetCheckResult(
        asset_key=REPORT_KEY,
        check_name="day_complete",
        passed=report.complete,
        severity=AssetCheckSeverity.WARN,
        metadata={"problems": MetadataValue.json(problems)},
    )


data_quality_job = define_asset_job(
    "data_quality",
    selection=AssetSelection.checks(data_quality_checks),
    description="Run every Great Expectations suite on the last quality.window_minutes.",
)
audit_report_job = define_asset_job(
    "audit_report",
    selection=AssetSelection.assets(REPORT_KEY),
    description="Write the day's audit report (HTML) and attach its summary.",
)
data_quality_schedule = ScheduleDefinition(
    name="data_quality_every_15_minutes",
    job=data_quality_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
# Daily, shortly after midnight UTC: the report of the day that just ended.
audit_report_schedule = build_schedule_from_partitioned_job(
    audit_report_job,
    name="audit_report_daily",
    hour_of_day=0,
    minute_of_hour=20,
    default_status=DefaultScheduleStatus.RUNNING,
)

ASSETS = [audit_report]
CHECKS = [data_quality_checks]
JOBS = [data_quality_job, audit_report_job]
SCHEDULES = [data_quality_schedule, audit_report_schedule]
