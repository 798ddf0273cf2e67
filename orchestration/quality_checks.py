"""Data quality in Dagster: every Great Expectations suite is an asset check on its table,
run by the `data_quality` job every 15 minutes; the daily audit report is an asset.

Great Expectations is imported only when a check runs (quality.gx_engine), never when the
definitions load. Severity: a check fails with ERROR when an ERROR expectation failed, with
WARN when only WARN ones did (per-expectation severity lives in each suite's meta).
"""

from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    asset,
    define_asset_job,
    multi_asset_check,
    schedule,
)

from orchestration.assets.tables import TABLE_KEYS
from orchestration.automation import SCHEDULE_STATUS
from orchestration.keys import AUDIT_KEY, OWNERS, RECON_KEY, REPORT_KEY
from orchestration.partition_quality import partition_quality as partition_quality
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
# end_offset=1: today's partition exists (a report of the day so far, e.g. after the demo)
REPORT_PARTITIONS = DailyPartitionsDefinition(start_date=BACKFILL_START, timezone="UTC",
                                              end_offset=1)


class QualityWindowConfig(Config):
    window_minutes: int = 0  # 0: setting quality.window_minutes
    # the window ends this many minutes after now (events stamped a little ahead of our
    # clock, e.g. by a replay that rebases recorded sessions to now)
    ahead_minutes: float = 0.0


def today_utc() -> str:
    return datetime.now(UTC).date().isoformat()


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
def data_quality_checks(
    context: AssetCheckExecutionContext, config: QualityWindowConfig, settings: SettingsResource
):
    selected = {c.asset_key for c in context.selected_asset_check_keys}
    suites = [s for s, key in SUITE_KEYS.items() if key in selected]
    loaded = settings.load()
    window = Window.last_minutes(
        config.window_minutes or loaded.quality.window_minutes,
        now=datetime.now(UTC) + timedelta(minutes=config.ahead_minutes),
    )
    run = run_quality(loaded, window, suites=suites)
    context.log.info(run.summary())
    for res in run.results:
        yield suite_check_result(res, run.window.label(), run.run_id)


@asset(
    key=REPORT_KEY,
    group_name="reports",
    owners=OWNERS,
    kinds={"html"},
    partitions_def=REPORT_PARTITIONS,
    deps=[
        AUDIT_KEY,
        RECON_KEY,
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
    # Launched without a partition (`dagster job execute -j audit_report`), the run writes
    # the report of the day the definitions were loaded: today. The launchpad, the
    # schedule and backfills set their own partition, which wins over this default.
    tags={"dagster/partition": today_utc()},
    description="Write the day's audit report (HTML) and attach its summary; without a "
    "partition: today's.",
)
data_quality_schedule = ScheduleDefinition(
    name="data_quality_every_15_minutes",
    job=data_quality_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
)


@schedule(
    name="audit_report_daily",
    job=audit_report_job,
    cron_schedule="20 0 * * *",
    execution_timezone="UTC",
    default_status=SCHEDULE_STATUS,
    description="Shortly after midnight UTC: the report of the day that just ended.",
)
def audit_report_schedule(context: ScheduleEvaluationContext):
    day = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    return RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())


ASSETS = [audit_report]
CHECKS = [data_quality_checks]
JOBS = [data_quality_job, audit_report_job]
SCHEDULES = [data_quality_schedule, audit_report_schedule]
