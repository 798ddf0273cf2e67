"""Quality outcomes as rows of ops.quality_results."""

from __future__ import annotations

import json
from datetime import datetime

from quality.gx_engine import SuiteResult
from quality.window import Window

COLUMNS = [
    "run_id",
    "checked_ts",
    "suite",
    "table_name",
    "expectation",
    "severity",
    "window_start",
    "window_end",
    "success",
    "observed_value",
    "unexpected_count",
    "sample",
]


def result_rows(
    run_id: str, checked: datetime, window: Window, results: list[SuiteResult]
) -> list[list]:
    rows = []
    for res in results:
        for out in res.outcomes:
            rows.append(
                [
                    run_id,
                    checked,
                    res.suite.name,
                    res.suite.table,
                    out.expectation,
                    out.severity,
                    window.start,
                    window.end,
                    int(out.success),
                    out.observed_value,
                    out.unexpected_count,
                    json.dumps(out.sample, default=str),
                ]
            )
    return rows


def write_results(client, rows: list[list]) -> None:
    if rows:
        client.insert("ops.quality_results", rows, column_names=COLUMNS)
