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

from feedhouse.app.drills.common import (
    STORE_HELP,
    RunProcess,
    captures_folder,
    drain_held,
    drill_home,
    echo,
    measure_trades,
    recorded_trade_rate,
    sent_totals,
    server_feeds,
    store_of,
    unique_sent_by_venue,
    verdict,
    wait_quiet,
    write_drill_config,
)
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.config import load_settings
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


def run_flap_drill(
    seconds: float = 60.0,
    drop_every: float = 5.0,
    rate: float = 2000.0,
    store: Path | None = None,
) -> dict:

    home = drill_home(store, "flap")
    echo("flap", f"store {store_of(home)}")
    speed = rate / recorded_trade_rate() if rate > 0 else None
    server = SessionServer(captures_folder(home), speed=speed, loop=True,
                          faults=f"drop={drop_every:g}s")
    server.start()
    feeds = server_feeds(server)
    feed_of_path = {f["url"].rsplit("/", 1)[1]: f["name"] for f in feeds}
    # reconnect quickly: the drill is about surviving the drops, not about backoff
    for feed in feeds:
        feed.update(reconnect_initial_s=0.2, reconnect_max_s=2.0)
    config = write_drill_config(home, feeds)
    settings = load_settings(config)
    run = RunProcess(config, home / "run.log")
    code, settled, alive = None, False, True
    try:
        run.start().wait_running()
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(0.5)
            alive &= run.alive
        server.calm()  # no drop may race the check below
        settled = _all_reconnected(server, drop_every * 2 + 10)
        settled &= drain_held(server, run.status_file, feed_of_path)
        server.stop()
        wait_quiet(run.status_file)
        alive &= run.alive
        code = run.stop()
    finally:
        run.kill()
        server.stop()
    stats = server.stats()
    sent = sent_totals(stats)
    by_venue = unique_sent_by_venue(server)
    result = {"drill": "flap", **measure_trades(settings, sent, by_venue)}
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
        "per_feed": per_feed, "settled": settled, "run_alive": alive, "run_exit": code,
        "tracebacks": run.tracebacks(), "peak_rss_mb": round(run.peak_rss_mb, 1),
        "store": str(store_of(home)),
    })
    result["ok"] = bool(
        result["ok"] and drops > 0 and settled and alive and code == 0
        and result["tracebacks"] == 0
        and all(f["gaps"] == f["drops"] and f["reconnects"] >= f["drops"]
                for f in per_feed.values())
    )
    echo("flap", f"store kept at {store_of(home)} (run log: {run.log_path})")
    return result


def flap(
    seconds: float = typer.Option(60, "--seconds", min=1, help="how long the server flaps"),
    drop_every: float = typer.Option(5, "--drop-every", min=0.5,
                                     help="seconds after which each connection is dropped"),
    rate: float = typer.Option(2000, "--rate", min=0, help="trades/s to send (0: max)"),
    store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Connections dropped every few seconds: reconnects, gaps recorded, nothing lost."""
    verdict(run_flap_drill(seconds, drop_every, rate, store))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("flap")(flap)
