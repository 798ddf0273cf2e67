"""`feedhouse drill flap`: the replay server drops every connection every few seconds.

The replay server loops trade sessions of three venues and aborts every connection
`--drop-every` seconds after it opened (no close frame, like a network failure), for
`--seconds`. `feedhouse run` must reconnect each time (resuming at its position with
`?from=N`), record each disconnect in ops.feed_gaps, and keep running. At the end the
drill waits until every feed is connected again (so each drop has been followed by a
reconnect), stops the server, lets the run drain and stops it. ok when:

    gaps recorded (ops.feed_gaps, kind disconnect) == drops, per feed
    reconnects (connections - 1) >= drops, per feed; the run exits 0, no traceback
    lost == 0 and duplicates_stored == 0 (every delivered trade stored once)
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from feedhouse.app.drills.options import STORE_OPTION
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.drills.verdict import verdict
from feedhouse.store.client import warehouse


def _all_reconnected(server, timeout_s: float) -> bool:
    """Until every path is connected after its last drop (connections == drops + 1)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = server.stats().values()
        if all(st["connections"] == st["drops"] + 1 for st in stats):
            return True
        time.sleep(0.05)
    return False


def _all_connected(server, timeout_s: float) -> bool:
    """Until every path has a connection: the drops count from there (a run slow to
    start on a loaded machine could otherwise connect after the drill's window)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(st["connections"] >= 1 for st in server.stats().values()):
            return True
        time.sleep(0.05)
    return False


def run_flap_drill(
    seconds: float = 60.0,
    drop_every: float = 5.0,
    rate: float = 2000.0,
    store: Path | None = None,
) -> dict:

    settled, alive = False, True
    with DrillRun.fresh("flap", store) as d:
        server = d.serve(rate=rate, faults=f"drop={drop_every:g}s")
        # reconnect quickly: the drill is about surviving the drops, not about backoff
        for feed in d.feeds:
            feed.update(reconnect_initial_s=0.2, reconnect_max_s=2.0)
        settings = d.configure()
        feed_of_path = d.feed_of_path
        d.run.start().wait_running()
        connected = _all_connected(server, 120)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(0.5)
            alive &= d.run.alive
        server.calm()  # no drop may race the check below
        settled = connected and _all_reconnected(server, drop_every * 2 + 10)
        settled &= d.drain_held()
        d.drain()
        alive &= d.run.alive
        d.stop()
    stats = server.stats()
    result = {"drill": "flap", **d.measure()}
    with warehouse(settings) as client:
        gaps = dict(client.query(
            "SELECT feed, count() FROM ops.feed_gaps WHERE kind = 'disconnect' GROUP BY feed"
        ).result_rows)
    per_feed = {
        feed_of_path[path]: {"drops": st["drops"], "reconnects": st["connections"] - 1,
                             "gaps": int(gaps.get(feed_of_path[path], 0))}
        for path, st in stats.items()
    }
    drops = sum(f["drops"] for f in per_feed.values())
    result.update({
        "drops": drops,
        "reconnects": sum(f["reconnects"] for f in per_feed.values()),
        "gaps": sum(f["gaps"] for f in per_feed.values()),
        "per_feed": per_feed, "settled": settled, "run_alive": alive, "run_exit": d.code,
        "tracebacks": d.run.tracebacks(), "peak_rss_mb": d.peak_rss_mb,
        "store": str(d.store),
    })
    result["ok"] = bool(
        result["ok"] and drops > 0 and settled and alive and d.code == 0
        and result["tracebacks"] == 0
        and all(f["gaps"] == f["drops"] and f["reconnects"] >= f["drops"]
                for f in per_feed.values())
    )
    d.kept()
    return result


def flap(
    seconds: float = typer.Option(60, "--seconds", min=1, help="how long the server flaps"),
    drop_every: float = typer.Option(5, "--drop-every", min=0.5,
                                     help="seconds after which each connection is dropped"),
    rate: float = typer.Option(2000, "--rate", min=0, help="trades/s to send (0: max)"),
    store: Path | None = STORE_OPTION,
) -> None:
    """Connections dropped every few seconds: reconnects, gaps recorded, nothing lost."""
    verdict(run_flap_drill(seconds, drop_every, rate, store))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("flap")(flap)
