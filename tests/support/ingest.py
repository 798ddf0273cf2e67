"""Helpers for the ingest tests: capture files as MessageBatch items, ledger/table checks."""

from __future__ import annotations

from pathlib import Path

from dataflows.frames import MessageBatch
from dataflows.sources.capture import read_capture
from feedhouse.app.drills.common import DRILL_CAPTURES, captures_folder, sent_totals, server_feeds
from tests.support.paths import SESSIONS, corpus

__all__ = ["sent_totals"]  # re-exported for the tests
from feedhouse.core.records import us_from_s


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
        ("market.quotes", "exchange_ts, bid_price, ask_price"),
    ):
        r, k = client.query(
            f"SELECT count(), uniqExact(venue, symbol, {key}) FROM {table} WHERE feed = {{f:String}}",
            parameters={"f": feed},
        ).result_rows[0]
        rows, keys = rows + r, keys + k
    return rows, keys


def bad_ledger_minutes(client) -> list:
    from feedhouse.store.ledger import check_ledger

    return [(c.feed, c.minute, c.counters) for c in check_ledger(client) if not c.ok]


def captures_dir(tmp_path: Path, names=DRILL_CAPTURES) -> Path:
    """A folder holding only `names` (symlinks), for a quick-loading replay server."""
    return captures_folder(tmp_path, names, SESSIONS)


def replay_feeds(server, names=DRILL_CAPTURES) -> list[dict]:
    """Feed settings pointing at the replay server, one per capture."""
    return server_feeds(server, names, SESSIONS)


def write_config(home: Path, feeds: list[dict], **extra) -> Path:
    import yaml

    config = home / "feedhouse.yaml"
    data = {"home": str(home), "fault_file": str(home / "faults.json"), "feeds": feeds, **extra}
    config.write_text(yaml.safe_dump(data))
    return config


def start_run(config: Path, *args: str):
    """`feedhouse run` as a subprocess (output in run.log beside the config)."""
    import subprocess
    import sys

    from tests.support.cli import clean_env

    (config.parent / "run_status.json").unlink(missing_ok=True)  # no stale status
    log = (config.parent / "run.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "feedhouse.app.cli.main", "--config", str(config), "run", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(),
    )


def wait_status(home: Path, done, timeout_s: float = 60) -> dict:
    from feedhouse.app.drills.common import wait_for_status

    return wait_for_status(home / "run_status.json", done, timeout_s)


def wait_quiet(home: Path, quiet_s: float = 2.0, timeout_s: float = 60) -> dict:
    """Until the run's received count stopped growing for quiet_s."""
    import time

    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        status = wait_status(home, lambda s: True, 5)
        received = sum(f["received"] for f in status.get("feeds", {}).values())
        if received != last:
            last, since = received, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.25)
    return status
