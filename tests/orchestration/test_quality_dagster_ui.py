"""The Dagster UI shows the quality checks: `dagster dev` on a free loopback port, the asset
page of market/trades rendered in headless Chromium (Debian's package)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from feedhouse.app.mqtt.broker import free_port
from tests.support.browser import png_pixels, render_url, wait_http
from tests.support.cli import clean_env
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

DAGSTER = str(Path(sys.executable).parent / "dagster")


def test_dagster_ui_asset_page_lists_the_great_expectations_check(tmp_path):
    port = free_port()
    env = clean_env(DAGSTER_HOME=str(tmp_path), FEEDHOUSE_HOME=str(tmp_path / "fh"))
    proc = subprocess.Popen(
        [DAGSTER, "dev", "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/server_info", proc)
        # market/trades has three checks now (fresh first): open the suite's check by name
        page = f"{base}/assets/market/trades?view=checks&checkDetail=great_expectations"
        expected = ("great_expectations", "Great Expectations suite quality/suites/market_trades.json",
                    "row_counts_match_ledger")
        for _attempt in range(3):  # the UI fills in checks as its queries answer
            text, png = render_url(page, tmp_path)
            if all(e in text for e in expected):
                break
        assert "great_expectations" in text
        assert "Great Expectations suite quality/suites/market_trades.json" in text
        assert "row_counts_match_ledger" in text  # the audit's check sits beside it
        pixels = png_pixels(png)
        flat = pixels.reshape(-1, pixels.shape[2])[:, :3]
        assert len(np.unique(flat[::11], axis=0)) > 20  # a rendered page, not a blank one
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
