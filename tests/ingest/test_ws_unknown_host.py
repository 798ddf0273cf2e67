"""An exchange feed whose host cannot be resolved (offline, a typo) says which host in
its reconnect line (was: `gaierror: Name or service not known` and no host)."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_reconnect_line_names_the_host(tmp_path):
    (tmp_path / "feedhouse.yaml").write_text(
        "feeds:\n  - {name: kr, venue: kraken, url: 'wss://no-such-host.invalid/v2', "
        "symbols: [BTC-USD]}\n"
    )
    done = run_cli("run", "--seconds", "3", cwd=tmp_path, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [li for li in (done.stdout + done.stderr).splitlines() if "reconnecting in" in li]
    assert lines and all("feed kr (no-such-host.invalid): " in li for li in lines), lines[:3]
