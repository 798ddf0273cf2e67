"""`feedhouse drill slow-sink`: ClickHouse inserts slowed under load; memory stays bounded.

The replay server loops trade sessions of three venues as fast as the pipeline reads.
For the first third of `--seconds` the store answers normally; then the fault injector
adds `--latency-ms` to every warehouse use and `--row-latency-us` per row inserted (the
per-row part is what slows a sink that writes everything queued as one insert: group
commit amortizes a fixed delay per insert). A slow sink must slow the sources, not grow
memory: the committer's bounded queue makes the dataflow wait, the exchange source's
bounded queue fills, its WebSocket client stops reading, TCP pushes back. The drill
samples, in both phases, the share of time the ingest's sources spent not reading
(`source_paused_s` of the run status) and the server's trade send rate, and the ingest
process's peak RSS (VmHWM from /proc/<pid>/status), then removes the latency, stops the
server, lets the run drain, stops it and checks the store. ok when:

    source_paused_slow >= 0.5 and > source_paused_normal  (backpressure reached the source)
    peak_rss_mb <= --max-rss-mb                            (memory bounded)
    lost == 0 and duplicates_stored == 0

The server's send rate is reported, not judged: the kernel's socket buffers on loopback
take megabytes after the client stops reading, so the server feels the pushback seconds
later. Each feed's queue is `--queue-frames` (setting feeds[].queue_frames, default 10k
here; the source's default is 100k frames per feed).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from feedhouse.app.drills.options import STORE_OPTION, seconds_option
from feedhouse.app.drills.process import vm_hwm_mb, wait_for_status
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.drills.verdict import verdict

PAUSED_SLOW = 0.5  # share of the slow phase the sources must spend not reading


def _trades_sent(server) -> int:
    return sum(st["trades_sent"] for st in server.stats().values())


def _paused(status: dict) -> tuple[float, float]:
    """(seconds all exchange sources spent not reading, status time) of one snapshot."""
    return sum(status.get("source_paused_s", {}).values()), status.get("written", 0.0)


def _phase(server, status_file: Path, feeds: int, seconds: float, tail: float = 1.0):
    """Over the last `tail` fraction of the next `seconds`: trades/s the server sent, and
    the share of that time the ingest's sources stopped reading (their queues full)."""
    time.sleep(seconds * (1 - tail))
    p0, w0 = _paused(wait_for_status(status_file, lambda s: True, 5))
    start, t0 = _trades_sent(server), time.monotonic()
    time.sleep(seconds * tail)
    rate = (_trades_sent(server) - start) / max(time.monotonic() - t0, 1e-6)
    p1, w1 = _paused(wait_for_status(status_file, lambda s: True, 5))
    return rate, (p1 - p0) / max((w1 - w0) * feeds, 1e-6)


def run_slow_sink_drill(
    seconds: float = 30.0,
    latency_ms: float = 200.0,
    row_latency_us: float = 5000.0,
    max_rss_mb: float = 1536.0,
    queue_frames: int = 10_000,
    store: Path | None = None,
) -> dict:

    rss_normal, settled = 0.0, False
    paused_normal = paused_slow = normal = slow = 0.0
    with DrillRun.fresh("slow-sink", store) as d:
        server = d.serve(faults="dup=0.02")
        for feed in d.feeds:
            feed["queue_frames"] = queue_frames
        d.configure()
        feeds, run = len(d.feeds), d.run
        run.start().wait_running()
        third = seconds / 3
        # skip the first second of each phase: it still carries the previous one's pace
        time.sleep(1.0)
        normal, paused_normal = _phase(server, run.status_file, feeds, third - 1.0)
        rss_normal = vm_hwm_mb(run.proc.pid) or 0.0
        d.faults(latency_ms=latency_ms, row_latency_us=row_latency_us)
        d.echo(f"inserts slowed by {latency_ms:g} ms + {row_latency_us:g} µs a row")
        # the queues first absorb what they can hold; measure once they are full
        slow, paused_slow = _phase(server, run.status_file, feeds, 2 * third, tail=0.4)
        d.faults(latency_ms=0)
        d.echo("latency removed; draining")
        settled = d.drain_held()
        d.finish()
    result = {"drill": "slow-sink", **d.measure(),
              "latency_ms": latency_ms, "row_latency_us": row_latency_us,
              "send_rate_normal": round(normal, 1), "send_rate_slow": round(slow, 1),
              "source_paused_normal": round(paused_normal, 3),
              "source_paused_slow": round(paused_slow, 3),
              "backpressure": paused_slow >= PAUSED_SLOW and paused_slow > paused_normal,
              "peak_rss_mb": d.peak_rss_mb, "rss_normal_mb": round(rss_normal, 1),
              "max_rss_mb": max_rss_mb, "queue_frames": queue_frames,
              "reconnects": sum(st["connections"] for st in server.stats().values())
              - len(server.streams),
              "settled": settled, "run_exit": d.code, "store": str(d.store)}
    result["ok"] = bool(result["ok"] and result["backpressure"] and d.code == 0
                        and 0 < run.peak_rss_mb <= max_rss_mb)
    d.kept()
    return result


def slow_sink(
    seconds: float = seconds_option(30, least=3),
    latency_ms: float = typer.Option(200, "--latency-ms", min=0, help="added to every insert"),
    row_latency_us: float = typer.Option(5000, "--row-latency-us", min=0,
                                         help="added to every insert per row"),
    max_rss_mb: float = typer.Option(1536, "--max-rss-mb", min=1,
                                     help="peak RSS the ingest may reach"),
    queue_frames: int = typer.Option(10_000, "--queue-frames", min=100,
                                     help="frames each feed may hold before it stops reading"),
    store: Path | None = STORE_OPTION,
) -> None:
    """Slow inserts under load: backpressure reaches the source, memory bounded, no loss."""
    verdict(run_slow_sink_drill(seconds, latency_ms, row_latency_us, max_rss_mb, queue_frames,
                                store))


def register(drill_app: typer.Typer) -> None:
    drill_app.command("slow-sink")(slow_sink)
