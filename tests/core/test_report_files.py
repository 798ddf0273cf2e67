"""Reports per store: two warehouses' reports and Data Docs never replace each other.

The demo's store is complete; a second store (as a drill leaves it) is inspected from the
same folder with FEEDHOUSE_WAREHOUSE_DSN, as the docs suggest. Before, both wrote
./reports/audit-DAY.html and ./reports/data_docs/, and the second replaced the first.
"""

from __future__ import annotations

import pytest

from feedhouse.core.config import load_settings
from feedhouse.core.report_files import data_docs_dir, report_path, warehouse_tag
from tests.support.cli import run_cli
from tests.support.quality_seed import at, audits, seed, store_settings, trades


def test_default_reports_folder_is_under_the_home(tmp_path):
    settings = load_settings(None, home=str(tmp_path / "h"))
    assert settings.reports_dir == tmp_path / "h" / "reports"
    assert warehouse_tag(settings) is None
    assert report_path(settings, at(0).date()).name == f"audit-{at(0).date()}.html"
    assert data_docs_dir(settings) == tmp_path / "h" / "reports" / "data_docs"


def test_tags_name_the_warehouse_and_hold_no_password(tmp_path):
    home = str(tmp_path / "h")
    drill = load_settings(None, home=home, warehouse_dsn=f"chdb://{tmp_path / 'drill-a'}")
    other = load_settings(None, home=home, warehouse_dsn=f"chdb://{tmp_path / 'x' / 'drill-a'}")
    server = load_settings(None, home=home, warehouse_dsn="https://ingest:s3cr3t@ch.example:8443/prod")
    tags = {warehouse_tag(s) for s in (drill, other, server)}
    assert len(tags) == 3, tags  # same folder name, other path: still its own files
    # another user of the same warehouse (Dagster's, the backfill's) writes the same files
    backfill = load_settings(None, home=home, warehouse_dsn="https://bf:other@ch.example:8443/prod")
    assert warehouse_tag(backfill) == warehouse_tag(server)
    staging = load_settings(None, home=home, warehouse_dsn="https://ingest:s3cr3t@ch.example:8443/staging")
    assert warehouse_tag(staging) != warehouse_tag(server)
    assert warehouse_tag(drill).startswith("drill-a-")
    assert warehouse_tag(server).startswith("ch-example-8443-prod-")
    assert "s3cr3t" not in warehouse_tag(server)
    day = at(0).date()
    assert report_path(server, day).name == f"audit-{day}.{warehouse_tag(server)}.html"
    assert data_docs_dir(drill).name == f"data_docs.{warehouse_tag(drill)}"


@pytest.mark.integration
def test_a_second_store_report_does_not_replace_the_first(tmp_path):
    demo = store_settings(tmp_path / "demo")
    day = at(6).date().isoformat()
    seed(demo, market_trades=trades(at(6)), ops_row_count_audit=audits(at(6)))
    env = {"FEEDHOUSE_HOME": str(demo.home)}  # default reports folder: <home>/reports
    docs = run_cli("check", "--date", day, "--venue", "binance", **env)
    assert docs.returncode == 0, docs.stdout + docs.stderr
    own_docs = demo.home / "reports" / "data_docs" / "index.html"
    assert own_docs.is_file()
    first = run_cli("report", "--date", day, **env)
    assert first.returncode == 0, first.stdout + first.stderr
    own = demo.home / "reports" / f"audit-{day}.html"
    assert f"report: {own}" in first.stdout and "complete" in own.read_text()
    before = own.read_text(), own_docs.read_text()

    drill = store_settings(tmp_path / "drill")  # an empty store: its day is not complete
    env_drill = {**env, "FEEDHOUSE_WAREHOUSE_DSN": drill.dsn}
    second = run_cli("report", "--date", day, **env_drill)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "NOT complete: " not in own.read_text()
    theirs = report_path(load_settings(None, home=str(demo.home), warehouse_dsn=drill.dsn),
                         at(6).date())
    assert theirs != own and theirs.parent == own.parent and theirs.is_file()
    assert f"report: {theirs}" in second.stdout and "no rows were ingested" in theirs.read_text()
    run_cli("check", "--date", day, "--venue", "binance", **env_drill)
    assert (own.read_text(), own_docs.read_text()) == before
    assert len(list(own.parent.glob("data_docs*/index.html"))) == 2
