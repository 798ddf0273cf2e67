"""Validate a bounded window of every suite's table and record what was found.

    run_quality(settings)                              # the last quality.window_minutes
    run_quality(settings, Window.last_minutes(15))
    check_partition(settings, "2026-11-20", "binance") # one backfill partition

Steps: read each suite's window from ClickHouse as Arrow (one short warehouse block,
so the embedded store is not held while GX works), validate with Great Expectations,
build Data Docs into `<reports_dir>/data_docs/`, then write one ops.quality_results row
per expectation (a second short block).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from feedhouse.core.errors import FeedhouseError
from feedhouse.core.report_files import data_docs_dir
from feedhouse.core.settings import Settings
from feedhouse.store.client import warehouse
from quality.gx_engine import SuiteResult, validate
from quality.offline_docs import make_offline
from quality.results import result_rows, write_results
from quality.suites import load_suites
from quality.window import Window, query_parameters, read_window


@dataclass
class QualityRun:
    run_id: str
    checked: datetime
    window: Window
    results: list[SuiteResult]
    docs_index: Path | None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No ERROR expectation failed (WARN failures are reported, not fatal)."""
        return not any(r.errors for r in self.results)

    def suite(self, name: str) -> SuiteResult:
        for res in self.results:
            if res.suite.name == name:
                return res
        raise KeyError(name)

    def summary(self) -> str:
        failed = [
            f"{r.suite.name}: {o.expectation} [{o.severity}] {o.unexpected_count} rows"
            for r in self.results
            for o in r.failed
        ]
        head = "ok" if self.ok else "ERROR"
        checked = sum(len(r.outcomes) for r in self.results)
        return f"{head}: {checked} expectations, {len(failed)} failed" + (
            "".join(f"\n  {line}" for line in failed)
        )


def run_quality(
    settings: Settings,
    window: Window | None = None,
    suites: list[str] | None = None,
    *,
    venue_only: bool = False,
    docs: bool = True,
    now: datetime | None = None,
) -> QualityRun:
    checked = now or datetime.now(UTC)
    window = window or Window.last_minutes(settings.quality.window_minutes, checked)
    selected = load_suites(settings.quality, suites, venue_only=venue_only)
    params = query_parameters(settings.quality, window, checked)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    with warehouse(settings) as client:
        tables = {s.name: read_window(client, s, params) for s in selected}
    timings["read_s"] = time.perf_counter() - t0

    docs_dir = data_docs_dir(settings) if docs else None
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
    built_since = time.time() - 1.0
    t0 = time.perf_counter()
    results = [
        validate(s, tables[s.name].to_pandas(), docs_dir, settings.quality.sample_size)
        for s in selected
    ]
    timings["validate_s"] = time.perf_counter() - t0

    run = QualityRun(uuid.uuid4().hex, checked, window, results, None, timings)
    if docs_dir is not None and (docs_dir / "index.html").exists():
        run.docs_index = docs_dir / "index.html"
        make_offline(docs_dir, since=built_since)
        prune_data_docs(docs_dir, settings.quality.data_docs_keep_days)
    with warehouse(settings) as client:
        write_results(client, result_rows(run.run_id, checked, window, results))
    return run


def prune_data_docs(docs_dir: Path, keep_days: float) -> int:
    """Delete validation pages older than keep_days (a run every 15 minutes writes one page
    per suite); returns how many went. The index always shows the latest run."""
    cutoff = time.time() - keep_days * 86400
    removed = 0
    validations = docs_dir / "validations"
    for page in validations.rglob("*.html") if validations.is_dir() else ():
        if page.stat().st_mtime < cutoff:
            page.unlink(missing_ok=True)
            removed += 1
    for folder in sorted(validations.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


class PartitionCheckFailed(FeedhouseError):
    """An ERROR expectation failed on a backfill partition: it must not be reported done."""


def check_partition(
    settings: Settings, day: date | str, venue: str, *, docs: bool = True
) -> QualityRun:
    """Check one backfill partition (day × venue) with the venue-scoped suites.

    Returns the run when no ERROR expectation failed; raises PartitionCheckFailed
    (message: the failed expectations) otherwise. WARN failures are in the run only.
    """
    run = run_quality(settings, Window.partition(day, venue), venue_only=True, docs=docs)
    if not run.ok:
        raise PartitionCheckFailed(f"partition {day}|{venue}: {run.summary()}".replace("\n", ";"))
    return run
