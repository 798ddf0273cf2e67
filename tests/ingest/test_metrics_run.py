"""Prometheus metrics scraped from a real `feedhouse run` while it ingests."""

from __future__ import annotations

import re
import signal
import urllib.request

import pytest

from feedhouse.app.mqtt.broker import free_port
from feedhouse.app.session_server.server import SessionServer
from tests.support.ingest import captures_dir, replay_feeds, start_run, wait_status, write_config

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def _value(text: str, sample: str) -> float:
    match = re.search(re.escape(sample) + r" ([0-9.e+-]+)$", text, re.M)
    assert match, f"no sample {sample!r}"
    return float(match.group(1))


def test_scrape_during_a_run(tmp_path) -> None:
    home = tmp_path / "fh"
    home.mkdir()
    port = free_port()
    with SessionServer(captures_dir(tmp_path), speed=None, loop=True, faults="dup=0.02") as server:
        config = write_config(home, replay_feeds(server), metrics_port=port)
        proc = start_run(config)
        try:
            wait_status(home, lambda s: sum(f["inserted"] for f in s.get("feeds", {}).values()) > 500)
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    feed = replay_feeds(server)[0]["name"]
    assert _value(text, f'feedhouse_received_messages_total{{feed="{feed}"}}') > 0
    assert _value(text, f'feedhouse_inserted_rows_total{{feed="{feed}"}}') > 0
    assert _value(text, f'feedhouse_feed_connected{{feed="{feed}"}}') == 1
    for hop in ("exchange_to_receive", "receive_to_parsed", "parsed_to_insert_acked", "end_to_end"):
        count = _value(text, f'feedhouse_latency_seconds_count{{feed="{feed}",hop="{hop}"}}')
        assert count > 0, hop
    assert _value(text, f'feedhouse_consumer_lag_seconds{{feed="{feed}"}}') >= 0
