"""`feedhouse drill slow-sink`: ClickHouse inserts slowed under load; memory stays bounded.

The replay server loops trade sessions of three venues as fast as the pipeline reads.
For the first third of `--seconds` the store answers normally; then the fault injector
adds `--latency-ms` to every warehouse use (each insert) for the rest. A slow sink must
slow the sources, not grow memory: the sink blocks the dataflow, the exchange source's
bounded queue fills, its WebSocket client stops reading, TCP pushes back and the replay
server's sends slow down. The drill samples the server's send rate in both phases and
the ingest process's peak RSS (VmHWM from /proc/<pid>/status), then removes the latency,
stops the server, lets the run drain, stops it and checks the store. ok when:

    send_rate_slow < send_rate_normal * 0.75  (backpressure reached the source)

Each feed's queue is `--queue-frames` (setting feeds[].queue_frames, default 10k here):
with the source's default 100k frames per feed the same mechanism holds, but the queues
absorb several seconds of a fast feed before the server feels it.
    peak_rss_mb <= --max-rss-mb               (memory bounded)
    lost == 0 and duplicates_stored == 0
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from feedhouse.drills.common import (
    STORE_HELP,
    RunProcess,
    captures_folder,
    drain_held,
    drill_home,
    echo,
    measure_trades,
    sent_totals,
    server_feeds,
    store_of,
    unique_sent_by_venue,
    verdict,
    vm_hwm_mb,
    wait_quiet,
    write_drill_config,
)


def _frames_sent(server) -> int:
    return sum(st["frames_sent"] for st in server.stats().values())


def _rate_over(server, seconds: float, tail: float = 1.0) -> float:
    """Frames/s the server sent over the last `tail` fraction of the next `seconds`."""
    time.sleep(seconds * (1 - tail))
    start, t0 = _frames_sent(server), time.monotonic()
    time.sleep(seconds * tail)
    return (_frames_sent(server) - start) / max(time.monotonic() - t0, 1e-6)


def run_slow_sink_drill(
    seconds: float = 30.0,
    latency_ms: float = 2000.0,
    max_rss_mb: float = 1536.0,
    queue_frames: int = 10_000,
    store: Path | None = None,
) -> dict:
    from dataflows.replay_server import ReplayServer
    from feedhouse.settings import load_settings
    from feedhouse.warehouse import write_faults

    home = drill_home(store, "slow-sink")
    echo("slow-sink", f"store {store_of(home)}")
    server = ReplayServer(captures_folder(home), speed=None, loop=True, faults="dup=0.02")
    server.start()
    feeds = server_feeds(server)
    feed_of_path = {f["url"].rsplit("/", 1)[1]: f["name"] for f in feeds}
    for feed in feeds:
        feed["queue_frames"] = queue_frames
    config = write_drill_config(home, feeds)
    settings = load_settings(config)
    run = RunProcess(config, home / "run.log")
    code, rss_normal, settled = None, 0.0, False
    try:
        run.start().wait_running()
        third = seconds / 3
        # skip the first second of each phase: it still carries the previous one's pace
        time.sleep(1.0)
        normal = _rate_over(server, third - 1.0)
        rss_normal = vm_hwm_mb(run.proc.pid) or 0.0
        write_faults(settings.fault_file, latency_ms=latency_ms)
        echo("slow-sink", f"inserts slowed by {latency_ms:g} ms")
        # the queues first absorb what they can hold; measure once they are full
        slow = _rate_over(server, 2 * third, tail=0.4)
        write_faults(settings.fault_file, latency_ms=0)
        echo("slow-sink", "latency removed; draining")
        settled = drain_held(server, run.status_file, feed_of_path)
        server.stop()
        wait_quiet(run.status_file)
        code = run.stop()
    finally:
        run.kill()
        server.stop()
        write_faults(settings.fault_file, latency_ms=0)
    sent = sent_totals(server.stats())
    by_venue = unique_sent_by_venue(server)
    result = {"drill": "slow-sink", **measure_trades(settings, sent, by_venue),
              "latency_ms": latency_ms, "send_rate_normal": round(normal, 1),
              "send_rate_slow": round(slow, 1), "backpressure": slow < normal * 0.75,
              "peak_rss_mb": round(run.peak_rss_mb, 1), "rss_normal_mb": round(rss_normal, 1),
              "max_rss_mb": max_rss_mb, "queue_frames": queue_frames,
              "reconnects": sum(st["connections"] for st in server.stats().values())
              - len(server.streams),
              "settled": settled, "run_exit": code, "store": str(store_of(home))}
    result["ok"] = bool(result["ok"] and result["backpressure"] and code == 0
                        and 0 < run.peak_rss_mb <= max_rss_mb)
    echo("slow-sink", f"store kept at {store_of(home)} (run log: {run.log_path})")
    return result


def slow_sink(
    seconds: float = typer.Option(30, "--seconds", min=3, help="how long the server sends"),
    latency_ms: float = typer.Option(2000, "--latency-ms", min=1, help="added to every insert"),
    max_rss_mb: float = typer.Option(1536, "--max-rss-mb", min=1,
                                     help="peak RSS the ingest may reach"),
    queue_frames: int = typer.Option(10_000, "--queue-frames", min=100,
                                     help="frames each feed may hold before it stops reading"),
    store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Slow inserts under load: backpressure reaches the source, memory bounded, no loss."""
    verdict(run_slow_sink_drill(seconds, latency_ms, max_rss_mb, queue_frames, store))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("slow-sink")(slow_sink)
