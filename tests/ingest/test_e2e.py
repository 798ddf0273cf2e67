"""End to end: replay server (3 venues, looped, duplicated frames) -> dataflow -> chDB."""

from __future__ import annotations

import threading
import time

import pytest

from dataflows.runner import run
from dataflows.sink.stats import STATS
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from feedhouse.store.ledger import ledger_totals
from tests.support.ingest import bad_ledger_minutes, captures_dir, replay_feeds, sent_totals


def wait_drained(server, timeout_s: float = 30.0) -> None:
    """Until the ledger counted every frame the server sent (flushed each epoch)."""
    sent = sent_totals(server.stats())["frames_sent"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(t["received"] for t in STATS.totals.values()) >= sent:
            return
        time.sleep(0.2)


@pytest.mark.integration
def test_replayed_venues_land_once_and_the_ledger_reconciles(tmp_path):
    server = SessionServer(captures_dir(tmp_path), speed=None, loop=True, faults="dup=0.05")
    server.start()
    stop = threading.Event()
    try:
        settings = load_settings(
            home=str(tmp_path / "fh"), recovery=False, feeds=replay_feeds(server)
        )

        def stopper() -> None:
            # 4 s of data from the first frame on (the schema alone took > 4 s at load 25)
            deadline = time.monotonic() + 60
            while not sent_totals(server.stats())["frames_sent"] and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(4)
            # hold, not stop: the server sends nothing new but keeps its connections, so
            # frames still in socket buffers arrive (a stop could drop them: counted as
            # sent, never received); the flow drains what was sent
            server.hold()
            wait_drained(server)
            stop.set()

        threading.Thread(target=stopper, daemon=True).start()
        run(settings, stop=stop, handle_signals=False)
    finally:
        server.stop()
        stop.set()
    sent = sent_totals(server.stats())
    with warehouse(settings) as client:
        stored, unique = client.query(
            "SELECT count(), uniqExact(venue, symbol, trade_id) FROM market.trades"
        ).result_rows[0]
        per_venue = dict(
            client.query("SELECT venue, count() FROM market.trades GROUP BY venue").result_rows
        )
        totals = ledger_totals(client)
        per_feed = client.query(
            "SELECT feed, sum(received), sum(parsed), sum(duplicates), sum(invalid) FROM ops.ingest_ledger GROUP BY feed"
        ).result_rows
        bad = bad_ledger_minutes(client)
    print(server.stats(), per_feed)
    assert sent["unique_trades_sent"] > 300
    assert len(per_venue) == 3
    assert stored == unique == sent["unique_trades_sent"]
    assert totals["duplicates"] == sent["trades_sent"] - sent["unique_trades_sent"] > 0
    assert totals["received"] == sent["frames_sent"]
    assert bad == []
