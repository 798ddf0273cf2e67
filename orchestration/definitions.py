"""The single entry point of feedhouse's Dagster code: `dagster dev -m orchestration.definitions`
(or plain `dagster dev` in the repo root, via workspace.yaml / [tool.dagster]).

A plain aggregation of the lists the small modules export: add a module's list here.
"""

from __future__ import annotations

from dagster import Definitions

from orchestration import freshness, quality_checks, run_failures
from orchestration.assets import audit, backfill, backfill_books, reconcile, tables
from orchestration.jobs import JOBS
from orchestration.resources import EXECUTOR, RESOURCES
from orchestration.schedules import SCHEDULES
from orchestration.sensors import SENSORS

ASSETS = [*tables.ASSETS, *audit.ASSETS, *reconcile.ASSETS, *backfill.ASSETS,
          *backfill_books.ASSETS, *quality_checks.ASSETS]
ASSET_CHECKS = [*audit.CHECKS, *quality_checks.CHECKS, *freshness.CHECKS]

defs = Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=[*JOBS, *quality_checks.JOBS],
    schedules=[*SCHEDULES, *quality_checks.SCHEDULES],
    sensors=[*SENSORS, *run_failures.SENSORS],
    resources=RESOURCES,
    executor=EXECUTOR,
)
