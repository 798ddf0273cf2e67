"""Helpers for the ingest tests: capture files as MessageBatch items, ledger/table checks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dataflows.frames import MessageBatch
from dataflows.runner import run
from dataflows.sink.stats import STATS
from dataflows.sources.capture import read_capture
from feedhouse.app.drills import process
from feedhouse.app.drills.process import RunProcess, wait_for_status
from feedhouse.app.drills.runner import write_run_config
from feedhouse.app.drills.served import DRILL_CAPTURES, captures_folder, sent_totals, server_feeds
from feedhouse.core.records import us_from_s
from feedhouse.store.ledger import check_ledger
from tests.support.paths import SESSIONS, corpus

__all__ = ["sent_totals"]  # re-exported for the tests


def capture_messages(name: str) -> list[tuple[int, str | bytes]]:
    return [
        (us_from_s(e.ts), e.data) for e in read_capture(corpus(name)) if e.kind == "received"
    ]


def message_batches(feed: str, venue: str, messages, per: int = 50, start: int = 0):
    return [
        MessageBatch(feed, venue, feed, start + i, messages[i : i + per], [])
        for i in range(0, len(messages), per)
    ]


def table_counts(client, feed: str) -> tuple[int, int]:
    """(rows, distinct keys) of market.trades + market.quotes for one feed."""
    rows = keys = 0
    for table, key in (
        ("market.trades", "trade_id"),
        ("market.quotes", "exchange_ts, update_id, bid_price, ask_price, bid_size, ask_size"),
    ):
        r, k = client.query(
            f"SELECT count(), uniqExact(venue, symbol, {key}) FROM {table} WHERE feed = {{f:String}}",
            parameters={"f": feed},
        ).result_rows[0]
        rows, keys = rows + r, keys + k
    return rows, keys


def bad_ledger_minutes(client) -> list:
    return [(c.feed, c.minute, c.counters) for c in check_ledger(client) if not c.ok]


def captures_dir(tmp_path: Path, names=DRILL_CAPTURES) -> Path:
    """A folder holding only `names` (symlinks), for a quick-loading session server."""
    return captures_folder(tmp_path, names, SESSIONS)


def replay_feeds(server, names=DRILL_CAPTURES) -> list[dict]:
    """Feed settings pointing at the session server, one per capture."""
    return server_feeds(server, names, SESSIONS)


def write_config(home: Path, feeds: list[dict], **extra) -> Path:
    """home/feedhouse.yaml: state in `home`, the fault file beside (every fault off)."""
    return write_run_config(home, feeds, "feedhouse.yaml", **extra)


def start_run(config: Path, *args: str):
    """`feedhouse run` as a subprocess (output in run.log beside the config); its Popen."""
    return RunProcess(config, config.parent / "run.log", args).start().proc


def wait_status(home: Path, done, timeout_s: float = 60) -> dict:
    return wait_for_status(home / "run_status.json", done, timeout_s)


def wait_quiet(home: Path, quiet_s: float = 2.0, timeout_s: float = 60) -> dict:
    """Until the run's received count stopped growing for quiet_s (and its buffer is empty)."""
    return process.wait_quiet(home / "run_status.json", quiet_s, timeout_s)


def run_until_all_received(server, settings, timeout_s: float = 90, injected: int = 0) -> None:
    """`feedhouse run` in this process until it received every frame the (non-looping)
    session server sent, then 1.5 s to commit; stopped at `timeout_s` at the latest.
    `injected`: frames the feeds' clients add (REST depth snapshots): then every stream
    must also be complete (a paced session's sent frames are soon all received)."""
    stop = threading.Event()

    def stopper() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = server.stats().values()
            frames = sum(s.get("frames_sent", 0) for s in stats)
            complete = not injected or all(s.get("completed", 0) for s in stats)
            received = sum(t["received"] for t in STATS.totals.values())
            if frames and complete and received >= frames + injected:
                break
            time.sleep(0.2)
        time.sleep(1.5)
        stop.set()

    threading.Thread(target=stopper, daemon=True).start()
    try:
        run(settings, stop=stop, handle_signals=False)
    finally:
        stop.set()
