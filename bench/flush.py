"""Flush policy side by side: `python -m bench.flush [--lingers 0,20,40] [--rates 2000,10000]`.

For each `sink.linger_ms` (the committer's adaptive wait, feedhouse/committer.py) and each
paced rate, one run of the latency setup (bench/latency.py: the served corpus from
`feedhouse replay-server --speed X` in its own process, the dataflow in this one, hop
timestamps around parse, dedup and the sink's ack) reports tick-to-row p50/p95/p99, the
per-hop p99, inserts per second and the CPU of this process (user+sys, getrusage) per
trade acked, with the server's CPU beside. With `--max`, also the end-to-end setup
(bench/e2e.py: `feedhouse run` as fast as the server sends) per linger: trades/s and
CPU µs per trade. Configurations alternate in one process run, so machine noise (2 shared
cores) hits them alike; compare ratios, not absolute figures. One JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import threading
import time
from functools import partial

import numpy as np

import bench.e2e as e2e
from bench.common import Config
from bench.e2e import corpus_folder, cpu_s
from bench.latency import STARTUP_S, Probe
from bench.served import Server, build, feeds
from dataflows.runner import run as run_flow
from dataflows.sink.writer import Writer
from feedhouse.core.config import load_settings


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread name (comm) of this process, chDB's native threads included."""
    import os
    from collections import defaultdict
    from pathlib import Path

    out: dict[str, float] = defaultdict(float)
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = comm.rstrip("0123456789").rstrip(":-_ ") or comm
        out[name] += (int(fields[11]) + int(fields[12])) / tick
    return out


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def paced(cfg: Config, served, linger_ms: float, rate: int, home) -> dict:

    recorded = sum(s.trades / s.seconds for s in served)
    speed = rate / recorded
    shutil.rmtree(home, ignore_errors=True)
    probe = Probe()
    probe.install()
    inserts: list[float] = []
    insert_once = Writer.insert_once

    def counted(self, batch):
        insert_once(self, batch)
        inserts.append(time.monotonic())

    Writer.insert_once = counted
    marks: dict = {}
    try:
        with Server(corpus_folder(cfg), f"{speed:.6g}") as server:
            extra = {} if linger_ms is None else {"sink": {"linger_ms": linger_ms}}
            settings = load_settings(home=str(home), feeds=feeds(served, server.port), **extra)
            stop = threading.Event()

            def control() -> None:
                time.sleep(cfg.warmup_s + STARTUP_S)
                marks["t0"], marks["c0"] = time.monotonic(), _cpu_self()
                marks["s0"], marks["n0"] = cpu_s(server.proc.pid), len(probe.rows)
                marks["th0"] = thread_cpu()
                time.sleep(cfg.latency_s)
                marks["th1"] = thread_cpu()
                marks["t1"], marks["c1"] = time.monotonic(), _cpu_self()
                marks["s1"], marks["n1"] = cpu_s(server.proc.pid), len(probe.rows)
                stop.set()

            probe.collect_after = time.monotonic() + cfg.warmup_s + STARTUP_S
            threading.Thread(target=control, daemon=True).start()
            run_flow(settings, stop=stop, handle_signals=False)
    finally:
        probe.uninstall()
        Writer.insert_once = insert_once
    shutil.rmtree(home, ignore_errors=True)
    hops = probe.hops_ms()
    rows = marks["n1"] - marks["n0"]
    wall = marks["t1"] - marks["t0"]
    window_inserts = sum(marks["t0"] <= t < marks["t1"] for t in inserts)
    out = {"setup": "paced", "linger_ms": linger_ms, "offered_trades_per_s": rate,
           "acked_trades_per_s": round(rows / wall),
           "inserts_per_s": round(window_inserts / wall, 1),
           "rows_per_insert": round(rows / max(window_inserts, 1), 1),
           "cpu_us_per_trade": round((marks["c1"] - marks["c0"]) / max(rows, 1) * 1e6, 2),
           "ingest_cpu_share": round((marks["c1"] - marks["c0"]) / wall, 3),
           "server_cpu_share": round((marks["s1"] - marks["s0"]) / wall, 3)}
    threads = {k: round((v - marks["th0"].get(k, 0.0)) / wall, 3)
               for k, v in marks["th1"].items()}
    out["thread_cpu_share"] = dict(sorted(((k, v) for k, v in threads.items() if v >= 0.005),
                                          key=lambda kv: -kv[1]))
    for q in (50, 95, 99):
        out[f"total_p{q}_ms"] = round(float(np.percentile(hops["total"], q)), 1)
    for hop in ("receive_to_parsed", "parsed_to_dedup", "dedup_to_insert_acked"):
        out[f"{hop}_p50_ms"] = round(float(np.percentile(hops[hop], 50)), 1)
        out[f"{hop}_p99_ms"] = round(float(np.percentile(hops[hop], 99)), 1)
    return out


def flat_out(cfg: Config, served, linger_ms: float, home) -> dict:
    original = e2e.write_config
    if linger_ms is not None:
        e2e.write_config = partial(original, sink={"linger_ms": linger_ms})
    try:
        got = e2e.one_run(cfg, served, home, timeout_s=60 + cfg.e2e_trades / 5_000)
    finally:
        e2e.write_config = original
    return {"setup": "max", "linger_ms": linger_ms,
            "trades_per_s": round(got["trades_per_s"]),
            "cpu_us_per_trade": round(got["cpu_us_per_trade"], 2),
            "ingest_cpu_share": round(got["ingest_cpu_share"], 2),
            "server_cpu_share": round(got["server_cpu_share"], 2),
            "exact": got["stored"] == got["unique_stored"] == got["expected"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lingers", default="0,30,60")
    parser.add_argument("--label", default="", help="written into each JSON line")
    parser.add_argument("--rates", default="2000,10000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max", action="store_true", help="also the as-fast-as-sent setup")
    parser.add_argument("--max-trades", type=int, default=300_000)
    args = parser.parse_args()
    # "default": the settings' own (also on a tree without sink.linger_ms: before/after)
    lingers = [None if x == "default" else float(x) for x in args.lingers.split(",")]
    rates = [int(x) for x in args.rates.split(",") if x]
    cfg = Config(latency_s=args.seconds, warmup_s=args.warmup, e2e_trades=args.max_trades)
    needed = int(max(rates or [0]) * (args.seconds + args.warmup + STARTUP_S + 10))
    served = build(corpus_folder(cfg), max(cfg.e2e_trades, needed))
    for _ in range(args.repeats):
        for rate in rates:
            for linger in lingers:
                out = paced(cfg, served, linger, rate, cfg.workdir / "flush")
                print(json.dumps({"label": args.label, **out}), flush=True)
        if args.max:
            for linger in lingers:
                out = flat_out(cfg, served, linger, cfg.workdir / "flush-max")
                print(json.dumps({"label": args.label, **out}), flush=True)


if __name__ == "__main__":
    main()
