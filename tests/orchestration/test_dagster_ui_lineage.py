"""After a short demo, the Dagster UI (`make ui`'s command on a free port, headless Chromium)
shows the pipeline's proof: the lineage from the sources to the audit report, market/trades
observed with its checks passed, the demo's runs; and the sample backfill partition
materializes through the webserver (the GraphQL call the UI's Materialize button makes)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from dagster import AssetKey, DagsterInstance

from feedhouse.app.demo.sample_archive import SAMPLE_DAY, SAMPLE_PARTITION, SAMPLE_VENUE
from tests.support.browser import png_pixels, render_url, wait_http
from tests.support.cli import clean_env, run_cli
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration  # Dagster runs, the webserver and a browser

DAGSTER = str(Path(sys.executable).parent / "dagster")
DEMO_JOBS = ("observe_tables", "row_count_audit", "reconcile_replays", "data_quality",
             "audit_report")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A short demo in a fresh folder, then `make ui`'s command over its home."""
    folder = tmp_path_factory.mktemp("demo")
    demo = run_cli("demo", "--seconds", "20", "--outage-seconds", "5", cwd=folder, timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert re.search(r"5 Dagster runs \(5 succeeded\) and \d+ asset check evaluations", demo.stdout)
    home = folder / ".feedhouse"
    port = _free_port()
    env = clean_env(DAGSTER_HOME=str(home / "dagster_home"), FEEDHOUSE_CONFIG=str(home / "demo.yaml"))
    proc = subprocess.Popen(
        [DAGSTER, "dev", "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/server_info", proc)
        yield base, home, folder
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def render(page: str, folder: Path, expected: tuple[str, ...]) -> tuple[str, bytes]:
    """The page's text once every expected string shows (the UI fills in as queries answer)."""
    for _attempt in range(4):
        text, png = render_url(page, folder, budget_ms=15000)
        if all(e in text for e in expected):
            break
    return text, png


def graphql(base: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{base}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        answer = json.loads(resp.read())
    assert "errors" not in answer, answer
    return answer["data"]


def test_graph_shows_the_sources_upstream_of_the_audit_report(ui, tmp_path):
    base, _, _ = ui
    page = f"{base}/assets/reports/audit_report?view=lineage&lineageScope=upstream&lineageDepth=5"
    upstream = ("trades_backfill", "trades", "quotes", "readings", "ingest_ledger", "dead_letter",
                "replay_log", "row_count_audit", "reconciliation", "quality_results")
    text, png = render(page, tmp_path, upstream)
    for name in upstream:
        assert re.search(rf"\b{name}\b", text), (name, text[:2000])
    pixels = png_pixels(png)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[2])[::11, :3], axis=0)) > 20
    # the edges the graph draws, as the webserver serves them to the UI
    nodes = graphql(base, "{ assetNodes { assetKey { path } dependencyKeys { path } } }")
    deps = {"/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]}
            for n in nodes["assetNodes"]}
    assert deps["market/trades"] == {"market/trades_backfill"}
    assert deps["market/ohlcv_1m"] == {"market/trades"}
    assert "market/trades" in deps["ops/row_count_audit"]
    assert "ops/row_count_audit" in deps["ops/reconciliation"]
    assert "ops/reconciliation" in deps["ops/quality_results"]
    assert {"ops/quality_results", "ops/reconciliation"} <= deps["reports/audit_report"]


def test_trades_shows_its_observation_and_passed_checks(ui, tmp_path):
    base, _, _ = ui
    text, _ = render(f"{base}/assets/market/trades", tmp_path,
                     ("Latest observation", "lag_seconds", "rows_per_venue"))
    assert "Latest observation" in text
    row_count = re.search(r"Row count ([\d,]+)", text)
    assert row_count and int(row_count.group(1).replace(",", "")) > 1000, text[:2000]
    for name in ("last_event_time", "lag_seconds", "rows_per_venue", "binance_futures", "okx"):
        assert name in text, name
    checks = ("fresh", "great_expectations", "row_counts_match_ledger")
    text, _ = render(f"{base}/assets/market/trades?view=checks", tmp_path,
                     tuple(f"{c} {c} Succeeded" for c in checks))
    assert "Checks (3)" in text
    for check in checks:
        assert f"{check} {check} Succeeded" in text, (check, text[:2000])
    assert "Evaluation result Passed" in text


def test_runs_page_lists_the_demos_runs(ui, tmp_path):
    base, _, _ = ui
    text, _ = render(f"{base}/runs", tmp_path, DEMO_JOBS)
    for job in DEMO_JOBS:
        assert re.search(rf"\b{job}\b Manually launched Success", text), (job, text[:3000])


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


def test_sample_backfill_partition_materializes_through_the_webserver(ui, tmp_path):
    base, home, _ = ui
    day = SAMPLE_DAY.isoformat()
    params = {
        "selector": {"repositoryLocationName": "orchestration.definitions",
                     "repositoryName": "__repository__", "jobName": "__ASSET_JOB",
                     "assetSelection": [{"path": ["market", "trades_backfill"]}],
                     "assetCheckSelection": []},
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": [
            {"key": "dagster/partition", "value": SAMPLE_PARTITION},
            {"key": "dagster/partition/date", "value": day},
            {"key": "dagster/partition/venue", "value": SAMPLE_VENUE},
        ]},
    }
    launched = graphql(base, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline, status = time.monotonic() + 400, None
    while time.monotonic() < deadline:
        status = graphql(base, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                         {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert status == "SUCCESS", status
    instance = DagsterInstance.from_config(str(home / "dagster_home"))
    mat = instance.get_latest_materialization_event(AssetKey(["market", "trades_backfill"]))
    assert mat.dagster_event.partition == SAMPLE_PARTITION
    metadata = mat.asset_materialization.metadata
    assert metadata["rows_inserted"].value == 1820 and metadata["day_rows_after"].value == 1820
    assert metadata["quality"].value.splitlines()[1].startswith("ok: ")
