"""Great Expectations behind one function: `validate(suite, frame, ...)`.

GX takes seconds to import, so it is imported here, inside functions, and only when a
validation actually runs. One ephemeral context per process (and Data Docs folder) is
reused: suites, validation definitions and checkpoints are added-or-updated by name.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quality.suites import Suite, expectation_label, severity

if TYPE_CHECKING:
    import pandas as pd

DATASOURCE = "feedhouse"
DOCS_SITE = "feedhouse_data_docs"


@dataclass(frozen=True)
class Outcome:
    """One expectation's result, in the shape of an ops.quality_results row."""

    expectation: str
    severity: str
    success: bool
    observed_value: str  # JSON
    unexpected_count: int
    element_count: int
    sample: list[dict[str, Any]]


@dataclass(frozen=True)
class SuiteResult:
    suite: Suite
    outcomes: list[Outcome]
    rows: int
    docs_page: Path | None  # this validation's Data Docs page, when built

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.failed if o.severity == "ERROR"]


_contexts: dict[str, Any] = {}


def _context(docs_dir: Path | None):
    key = str(docs_dir or "")
    if key in _contexts:
        return _contexts[key]
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # In-memory stores and only our own docs site (the default ephemeral config would also
    # build a throwaway site in a temporary directory on every run).
    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.data_sources.add_pandas(DATASOURCE)
    _contexts[key] = context
    return context


def _checkpoint(context, suite: Suite, keys: list[str], sample_size: int, docs: bool):
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    source = context.data_sources.get(DATASOURCE)
    try:
        asset = source.get_asset(suite.name)
    except LookupError:
        asset = source.add_dataframe_asset(suite.name)
    try:
        batch = asset.get_batch_definition("window")
    except KeyError:
        batch = asset.add_batch_definition_whole_dataframe("window")
    gx_suite = context.suites.add_or_update(ExpectationSuite(**suite.spec))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs else []
    return context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=suite.name,
            validation_definitions=[definition],
            actions=actions,
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": keys,
                "partial_unexpected_count": sample_size,
            },
        )
    )


def validate(
    suite: Suite, frame: pd.DataFrame, docs_dir: Path | None = None, sample_size: int = 10
) -> SuiteResult:
    """Run `suite` on `frame`; build Data Docs into `docs_dir` when given."""
    context = _context(docs_dir)
    keys = [k for k in suite.keys if k in frame.columns]
    checkpoint = _checkpoint(context, suite, keys, sample_size, docs_dir is not None)
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    ((identifier, validation),) = result.run_results.items()
    by_label = {expectation_label(e): e for e in suite.expectations}
    outcomes = []
    for item in validation.results:
        config = item.expectation_config
        label = expectation_label({"type": config.type, "kwargs": config.kwargs})
        outcomes.append(_outcome(label, severity(by_label.get(label, {})), item, sample_size))
    return SuiteResult(suite, outcomes, len(frame), _docs_page(docs_dir, identifier))


def _outcome(label: str, level: str, item, sample_size: int) -> Outcome:
    res = dict(item.result or {})
    if item.exception_info and item.exception_info.get("raised_exception"):
        message = item.exception_info.get("exception_message") or "expectation raised"
        return Outcome(label, level, False, _json({"error": message}), 0, 0, [])
    if "observed_value" in res:
        observed = res["observed_value"]
    else:
        observed = {
            k: res[k] for k in ("element_count", "unexpected_percent", "missing_count") if k in res
        }
    sample = [_plain(row) for row in (res.get("partial_unexpected_index_list") or [])]
    return Outcome(
        expectation=label,
        severity=level,
        success=bool(item.success),
        observed_value=_json(observed),
        unexpected_count=int(res.get("unexpected_count") or 0),
        element_count=int(res.get("element_count") or 0),
        sample=sample[:sample_size],
    )


def _plain(value: Any) -> Any:
    """JSON-safe: timestamps as ISO text, NaN as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value


def _json(value: Any) -> str:
    return json.dumps(_plain(value), default=str, sort_keys=True)


def _docs_page(docs_dir: Path | None, identifier) -> Path | None:
    """validations/<suite>/<run_name>/<run_time>/<batch>.html as the site builder writes it."""
    if docs_dir is None:
        return None
    try:
        parts = identifier.to_tuple()
    except AttributeError:
        return None
    page = docs_dir.joinpath("validations", *[str(p) for p in parts[:-1]], f"{parts[-1]}.html")
    return page if page.exists() else docs_dir / "index.html"
