"""A real `feedhouse run` with a sentinel password in its warehouse DSN (from a secrets
file): the password never appears in what the run writes (log, status file, metrics,
buffer, recovery state)."""

from __future__ import annotations

import re
import signal
import urllib.request

import pytest

from feedhouse.app.session_server.server import SessionServer
from tests.support.ingest import captures_dir, replay_feeds, start_run, wait_status, write_config

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

SENTINEL = "S3ntinel-run-pw"


def test_a_running_ingest_never_writes_its_password(tmp_path):
    home = tmp_path / "fh"
    home.mkdir()
    # port 1 refuses connections: the run starts, buffers and keeps probing the warehouse,
    # so every path that mentions the warehouse (start warning, retries, probes) runs
    secret = tmp_path / "secrets" / "warehouse_dsn"  # a mounted secret, outside the home
    secret.parent.mkdir()
    secret.write_text(f"http://ingest:{SENTINEL}@127.0.0.1:1/ops\n")
    with SessionServer(captures_dir(tmp_path), speed=None, loop=True) as server:
        config = write_config(home, replay_feeds(server), warehouse_dsn_file=str(secret),
                              metrics_port=0,
                              sink={"buffer_after_s": 0.5, "replay_probe_s": 0.3,
                                    "retry_max_s": 0.2})
        proc = start_run(config)
        try:
            wait_status(home, lambda s: s.get("buffered_rows", 0) > 0)
            log = (home / "run.log").read_text()
            port = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", log)
            assert port, log[-2000:]
            with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics") as r:
                scraped = r.read().decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert "feedhouse_" in scraped
    assert SENTINEL not in scraped
    written = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "buffer.duckdb" for p in written)
    for path in written:
        assert SENTINEL.encode() not in path.read_bytes(), path
    # what it did say about the warehouse names it, with the password masked
    assert "ingest:***@127.0.0.1:1" in (home / "run.log").read_text()
