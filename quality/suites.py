"""Suites as reviewable JSON files, loaded at run time with thresholds from settings.

Two ways a threshold reaches a suite, both from `settings.quality`:
- a scalar kwarg spelled `{"$setting": "clock_skew_s"}` in the JSON is replaced by that
  setting's value when the suite is loaded;
- thresholds that differ per row (a sensor type's physical range, a venue's allowed
  silence) are query parameters of the suite's window SQL (`sql/quality/<suite>.sql`),
  which turns them into derived columns (range_min, silence_limit_s, ...) that standard
  column-pair expectations compare.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from feedhouse.core.errors import FeedhouseError
from feedhouse.core.paths import sql_dir, sql_text
from feedhouse.core.settings import QualitySettings

SUITES_DIR = Path(__file__).resolve().parent / "suites"
SEVERITIES = ("ERROR", "WARN")


@dataclass(frozen=True)
class Suite:
    """One suite with its placeholders resolved; `spec` is GX ExpectationSuite JSON."""

    name: str
    table: str
    query: str
    keys: tuple[str, ...]
    time_column: str
    venue_column: str | None
    spec: dict[str, Any]

    @property
    def expectations(self) -> list[dict[str, Any]]:
        return self.spec["expectations"]


def expectation_label(expectation: dict[str, Any]) -> str:
    """`type(column)` — the name a result row and a test use for one expectation."""
    kwargs = expectation["kwargs"]
    cols = kwargs.get("column") or kwargs.get("column_list")
    if cols is None and "column_A" in kwargs:
        cols = [kwargs["column_A"], kwargs["column_B"]]
    if isinstance(cols, list):
        cols = ",".join(cols)
    return f"{expectation['type']}({cols})" if cols else expectation["type"]


def severity(expectation: dict[str, Any]) -> str:
    return (expectation.get("meta") or {}).get("severity", "ERROR")


@cache
def _raw(path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FeedhouseError(f"quality suite {path.name}: cannot load ({exc})") from None
    for exp in spec.get("expectations", []):
        if severity(exp) not in SEVERITIES:
            raise FeedhouseError(
                f"quality suite {path.name}: {expectation_label(exp)} has severity "
                f"{severity(exp)!r} (use ERROR or WARN)"
            )
    return spec


def _resolve(value: Any, quality: QualitySettings, where: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$setting"}:
            name = value["$setting"]
            if name not in QualitySettings.model_fields:
                raise FeedhouseError(f"quality suite {where}: unknown setting quality.{name}")
            return getattr(quality, name)
        return {k: _resolve(v, quality, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, quality, where) for v in value]
    return value


def load_suite(name: str, quality: QualitySettings, folder: Path = SUITES_DIR) -> Suite:
    path = folder / f"{name}.json"
    if not path.is_file():
        raise FeedhouseError(f"no quality suite {name!r} (known: {', '.join(suite_names(folder))})")
    spec = _resolve(copy.deepcopy(_raw(path)), quality, path.name)
    meta = spec.get("meta", {})
    return Suite(
        name=spec["name"],
        table=meta["table"],
        query=meta["query"],
        keys=tuple(meta.get("keys", [])),
        time_column=meta["time_column"],
        venue_column=meta.get("venue_column"),
        spec=spec,
    )


def suite_names(folder: Path = SUITES_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.json"))


def load_suites(
    quality: QualitySettings, names: list[str] | None = None, *, venue_only: bool = False
) -> list[Suite]:
    """All suites (or `names`); `venue_only` keeps those that can be cut by venue."""
    suites = [load_suite(n, quality) for n in (names or suite_names())]
    return [s for s in suites if s.venue_column or not venue_only]


def query_text(suite: Suite) -> str:
    return sql_text(sql_dir() / "quality" / suite.query)


def suite_tables(folder: Path = SUITES_DIR) -> dict[str, str]:
    """{suite name: table} without resolving settings (cheap: for Dagster definitions)."""
    return {name: _raw(folder / f"{name}.json")["meta"]["table"] for name in suite_names(folder)}
