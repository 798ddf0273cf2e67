"""WebSocket CPU per frame: the exchange client and the session server, side by side.

    python -m bench.ws_client [--rate 10000] [--seconds 8] [--repeats 3]
        [--clients picows+uvloop,websockets+asyncio] [--server-tree DIR]

The served corpus (bench/served.py: Binance USD-M, OKX and Coinbase trade frames, looped
with shifted ids) goes out of `feedhouse session-server --speed S` in its own process, S
chosen so the three feeds together offer `rate` frames/s. This process runs one exchange
client per feed (`dataflows.sources`, each in its own thread and event loop, as
`feedhouse run` does) into a `FrameQueue` that the main thread empties (standing in for
Bytewax). Per repeat, over a window after a warm-up:

- client µs/frame = CPU time of the feed threads (their own thread clocks) / frames;
- server µs/frame = CPU time of the server process (/proc) / the same frames.

Client kinds alternate within a repeat, each against a fresh server. `--server-tree DIR`
runs the server from another checkout (e.g. the commit before the picows server) to
measure before/after in one session. Keys: `ws_client_cpu_us_per_frame` (picows+uvloop;
the others under `.by_client`) and `session_server_cpu_us_per_frame`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.common import ROOT, Config, Figure, measured, module_command
from bench.e2e import cpu_s
from bench.served import Server, build, feeds
from dataflows.sources.exchange import CLIENTS, FrameQueue
from dataflows.venues import get_venue
from feedhouse.core.settings import FeedSettings

CORPUS_TRADES = 300_000
WARMUP_S = 2.0
KINDS = ("picows+uvloop", "websockets+asyncio")


def loop_factory(name: str):
    if name == "uvloop":
        import uvloop  # deferred: optional, and only for this variant

        return uvloop.new_event_loop
    return asyncio.new_event_loop


class TreeServer(Server):
    """The session server, optionally from another source tree (PYTHONPATH first)."""

    def __init__(self, folder: Path, speed: str, tree: Path | None) -> None:
        super().__init__(folder, speed)
        if tree is not None:
            self.args = [sys.executable, "-c", "from feedhouse.app.cli.main import main; main()",
                         *self.args[1:]]
            os.environ["PYTHONPATH"] = str(tree)

    def __exit__(self, *exc) -> None:
        os.environ.pop("PYTHONPATH", None)
        super().__exit__(*exc)


def thread_cpu_s(threads: list[threading.Thread]) -> float:
    return sum(time.clock_gettime(time.pthread_getcpuclockid(t.ident)) for t in threads
               if t.ident is not None and t.is_alive())


def one_run(folder: Path, served, kind: str, rate: int, seconds: float,
            tree: Path | None) -> dict:
    library, loop_name = kind.split("+")
    offered = sum(s.frames / s.seconds for s in served)
    speed = rate / offered
    with TreeServer(folder, f"{speed:.6f}", tree) as server:
        clients, queues, threads = [], [], []
        for spec in feeds(served, server.port):
            feed = FeedSettings(**spec, ws_client=library, stale_s=60)
            queue = FrameQueue(feed=feed.name)
            client = CLIENTS[library](feed, get_venue(feed.venue or ""), queue, 0, True)

            def main(client=client) -> None:
                with asyncio.Runner(loop_factory=loop_factory(loop_name)) as runner:
                    runner.run(client.run())

            thread = threading.Thread(target=main, daemon=True)
            thread.start()
            clients.append(client)
            queues.append(queue)
            threads.append(thread)

        def frames() -> int:
            return sum(c.stats["frames"] for c in clients)

        def drain_until(t_end: float) -> None:
            while time.monotonic() < t_end:
                for q in queues:
                    q.take(100_000)
                time.sleep(0.005)

        drain_until(time.monotonic() + WARMUP_S)
        n0, c0, s0, t0 = frames(), thread_cpu_s(threads), cpu_s(server.proc.pid), \
            time.monotonic()
        drain_until(t0 + seconds)
        n1, c1, s1, t1 = frames(), thread_cpu_s(threads), cpu_s(server.proc.pid), \
            time.monotonic()
        for client in clients:
            client.stop()
        for thread in threads:
            thread.join(5)
    n = max(n1 - n0, 1)
    return {"kind": kind, "frames_per_s": n / (t1 - t0), "client_us": (c1 - c0) / n * 1e6,
            "server_us": (s1 - s0) / n * 1e6}


def measure(cfg: Config, rate: int, seconds: float, repeats: int, kinds=KINDS,
            tree: Path | None = None, log=print) -> list[dict]:
    trades = 20_000 if cfg.name == "tiny" else CORPUS_TRADES  # >= rate x (warm-up + window)
    folder = cfg.workdir / f"corpus-{trades}" / "captures"
    served = build(folder, trades)
    runs = []
    for r in range(repeats):
        for kind in kinds:  # alternating: the machine's load hits every kind alike
            got = one_run(folder, served, kind, rate, seconds, tree)
            got["load"] = os.getloadavg()[0]
            log(f"[ws_client] repeat {r + 1} {kind}: {got['frames_per_s']:.0f} frames/s, "
                f"client {got['client_us']:.2f} µs/frame, server {got['server_us']:.2f} "
                f"µs/frame, load {got['load']:.1f}")
            runs.append(got)
    return runs


def run(cfg: Config) -> list[Figure]:
    tiny = cfg.name == "tiny"
    rate, seconds = (1000, 1.0) if tiny else (10_000, 8.0)
    runs = measure(cfg, rate, seconds, 1 if tiny else 3)
    cmd = module_command("ws_client", cfg)
    by_kind = {k: [round(r["client_us"], 2) for r in runs if r["kind"] == k] for k in KINDS}
    settings = {"rate_frames_per_s": rate, "window_s": seconds, "warmup_s": WARMUP_S,
                "by_client": {k: statistics.median(v) for k, v in by_kind.items()},
                "by_client_repeats": by_kind,
                "load_avg_1m": [round(r["load"], 1) for r in runs]}
    server = [round(r["server_us"], 2) for r in runs]
    return [
        measured("ws_client_cpu_us_per_frame", "µs/frame", cmd, by_kind[KINDS[0]],
                 settings=settings, note="picows+uvloop; websockets+asyncio in by_client"),
        measured("session_server_cpu_us_per_frame", "µs/frame", cmd, server,
                 settings={"rate_frames_per_s": rate, "window_s": seconds},
                 note="the session server process, every client kind's runs"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_client")
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default=",".join(KINDS))
    parser.add_argument("--server-tree", type=Path, default=None)
    args = parser.parse_args()
    cfg = Config(workdir=ROOT / ".feedhouse" / "bench")
    runs = measure(cfg, args.rate, args.seconds, args.repeats, tuple(args.clients.split(",")),
                   args.server_tree)
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
