"""bench.ws_client on a tiny corpus: both clients measured against the session server,
every frame offered is received, and the figures land under their keys."""

from __future__ import annotations

import sys

import pytest

from tests.support.paths import ROOT

sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repo, not an installed package
from bench.common import Config  # noqa: E402
from bench.ws_client import KINDS, run  # noqa: E402

pytestmark = pytest.mark.integration  # starts the session server


def test_client_and_server_cpu_per_frame_for_both_clients(tmp_path) -> None:
    figures = {f.key: f for f in run(Config.tiny(tmp_path))}
    client = figures["ws_client_cpu_us_per_frame"]
    server = figures["session_server_cpu_us_per_frame"]
    assert client.value is not None and client.value > 0
    assert server.value is not None and len(server.repeats) == len(KINDS)
    assert set(client.settings["by_client"]) == set(KINDS)
    assert all(v > 0 for v in client.settings["by_client"].values())
