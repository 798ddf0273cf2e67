"""CPU µs per trade of each stage of the exchange path, measured on real code in process.

    python -m bench.e2e_stages [--trades 300000] [--rounds 2] [--tree OTHER_CHECKOUT]

The e2e corpus (bench/served.py) goes out of `feedhouse session-server --speed max` in its
own process into the ingest dataflow run here (`dataflows.runner.run`, default settings:
dedup and recovery on). Stages are wrapped with thread CPU clocks (`time.thread_time_ns`,
so waiting and other processes' load do not count), no change to their code:

- source: the feed threads (WebSocket client, frame hand-over): their CPU over their
  whole lives / trades sent (at full speed they may end before the window does);
- take: `FeedPartition.next_batch` on the dataflow thread (frames out of the queue);
- parse: `parse_batch` (the venues' decoding; another issue's stage, measured here);
- dedup: `DedupLogic.on_batch`/`on_notify`; dedup_snapshot: `DedupLogic.snapshot`;
- sink: `FeedSinkPartition.write_batch` (Arrow tables, tokens, hand-over to the
  committer); sink_snapshot: `FeedSinkPartition.snapshot` (ledger rows; waits not counted);
- bytewax: the rest of the dataflow thread (Bytewax's own work per item and per epoch,
  the recovery snapshots' pickling and writes);
- insert: the committer thread (clickhouse-connect + chDB's work on that thread);
- chdb_threads: threads no Python code runs on (chDB's pools: merges, parts);
- other: status, footprint and metrics threads.

The window runs from the first trade stored to the last; every figure is CPU over that
window / trades stored in it. `--tree` runs the dataflow's code from another checkout
(before/after side by side: this module is imported from this tree, the run in a child).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

STAGES = ("source", "take", "parse", "dedup", "dedup_snapshot", "sink", "sink_snapshot",
          "bytewax", "insert", "chdb_threads", "other")
TICK = os.sysconf("SC_CLK_TCK")


def _task_cpu() -> dict[int, float]:
    """CPU seconds of every thread of this process, by native thread id."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


class Clocks:
    """Per-stage thread CPU (ns) on the dataflow thread, and trades stored."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = defaultdict(int)
        self.rows = 0
        self.main_tid: int | None = None
        self.committer_tid: int | None = None
        self.undo: list = []

    def wrap(self, owner, name: str, stage: str) -> None:
        fn = getattr(owner, name)
        clocks = self

        def timed(*args, **kw):
            t0 = time.thread_time_ns()
            try:
                return fn(*args, **kw)
            finally:
                clocks.ns[stage] += time.thread_time_ns() - t0

        setattr(owner, name, timed)
        self.undo.append((owner, name, fn))

    def install(self) -> None:
        import dataflows.flow as flow
        from dataflows.dedup.stage import DedupLogic
        from dataflows.sink.committer import Committer
        from dataflows.sink.stage import FeedSinkPartition
        from dataflows.sources.exchange import FeedPartition

        self.wrap(FeedPartition, "next_batch", "take")
        self.wrap(flow, "parse_batch", "parse")
        self.wrap(DedupLogic, "on_batch", "dedup")
        self.wrap(DedupLogic, "on_notify", "dedup")
        self.wrap(DedupLogic, "snapshot", "dedup_snapshot")
        self.wrap(FeedSinkPartition, "write_batch", "sink")
        self.wrap(FeedSinkPartition, "snapshot", "sink_snapshot")
        observe = FeedSinkPartition._observe
        loop = Committer._loop
        clocks = self

        def counted(sink, table, rows):
            if table == "market.trades":
                clocks.rows += len(rows)
            return observe(sink, table, rows)

        def committer_loop(committer):
            clocks.committer_tid = threading.get_native_id()
            return loop(committer)

        run_feed = FeedPartition._run

        def feed_thread(part):  # the thread's whole life: it may end before the window does
            try:
                return run_feed(part)
            finally:
                clocks.ns["source_life"] += time.thread_time_ns()

        from dataflows.sink.writer import Writer

        insert_once = Writer.insert_once

        def counted_insert(writer, batch):
            clocks.ns["inserts"] += 1
            return insert_once(writer, batch)

        Writer.insert_once = counted_insert
        self.undo.append((Writer, "insert_once", insert_once))
        FeedPartition._run = feed_thread
        self.undo.append((FeedPartition, "_run", run_feed))
        FeedSinkPartition._observe = counted
        Committer._loop = committer_loop
        self.undo += [(FeedSinkPartition, "_observe", observe), (Committer, "_loop", loop)]

    def uninstall(self) -> None:
        for owner, name, fn in reversed(self.undo):
            setattr(owner, name, fn)

    def mark(self) -> dict:
        names = {t.native_id: t.name for t in threading.enumerate()}
        return {"t": time.monotonic(), "rows": self.rows, "ns": dict(self.ns),
                "tasks": _task_cpu(), "names": names}


def stage_table(a: dict, b: dict, main_tid: int, committer_tid: int | None,
                expected: int) -> dict:
    rows = max(b["rows"] - a["rows"], 1)
    us = {k: (b["ns"].get(k, 0) - a["ns"].get(k, 0)) / 1e3 / rows for k in STAGES}
    cpu = {tid: b["tasks"][tid] - a["tasks"].get(tid, 0.0) for tid in b["tasks"]}
    names = {**a["names"], **b["names"]}
    per = defaultdict(float)
    for tid, sec in cpu.items():
        name = names.get(tid)
        if tid == main_tid:
            key = "main"
        elif tid == committer_tid:
            key = "insert"
        elif name is None:
            key = "chdb_threads"
        elif name.startswith("feed-"):
            continue  # counted over the feed threads' lives (below)
        elif name == "stages-control":
            continue
        else:
            key = "other"
        per[key] += sec * 1e6 / rows
    wrapped = sum(us[k] for k in ("take", "parse", "dedup", "dedup_snapshot", "sink",
                                  "sink_snapshot"))
    us["bytewax"] = per["main"] - wrapped
    for key in ("insert", "chdb_threads", "other"):
        us[key] = per[key]
    us["source"] = b["ns"].get("source_life", 0) / 1e3 / expected
    us["total"] = sum(per.values()) + us["source"]
    us["threads"] = {f"{names.get(t)}:{t}": round(sec * 1e6 / rows, 3) for t, sec in cpu.items()
                     if sec * 1e6 / rows > 0.05}
    us["trades_per_s"] = rows / (b["t"] - a["t"])
    us["rows"] = rows
    us["rows_per_insert"] = rows / max(b["ns"].get("inserts", 0) - a["ns"].get("inserts", 0), 1)
    return us


def one_round(trades: int) -> dict:
    from bench.common import Config
    from bench.e2e import corpus_folder
    from bench.served import Server, build, feeds
    from dataflows.runner import run as run_flow
    from feedhouse.core.config import load_settings

    cfg = Config(e2e_trades=trades)
    served = build(corpus_folder(cfg), trades)
    expected = sum(s.trades for s in served)
    home = cfg.workdir / f"stages-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    clocks = Clocks()
    clocks.install()
    marks: dict = {}
    try:
        with Server(corpus_folder(cfg), "max") as server:
            settings = load_settings(home=str(home), feeds=feeds(served, server.port))
            stop = threading.Event()

            def control() -> None:
                while clocks.rows == 0 and not stop.is_set():
                    time.sleep(0.01)
                marks["a"] = clocks.mark()
                while clocks.rows < expected and not stop.is_set():
                    time.sleep(0.01)
                marks["b"] = clocks.mark()
                stop.set()
                # the feed threads' own totals arrive when they end
                for t in threading.enumerate():
                    if t.name.startswith("feed-"):
                        t.join(10)
                marks["b"]["ns"]["source_life"] = clocks.ns["source_life"]

            main_tid = threading.get_native_id()
            threading.Thread(target=control, name="stages-control", daemon=True).start()
            run_flow(settings, stop=stop, handle_signals=False)
    finally:
        clocks.uninstall()
        shutil.rmtree(home, ignore_errors=True)
    out = stage_table(marks["a"], marks["b"], main_tid, clocks.committer_tid, expected)
    out["load"] = os.getloadavg()[0]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trades", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tree", action="append", default=[],
                    help="another checkout to run beside this one (repeatable)")
    ap.add_argument("--env", action="append", default=[],
                    help="LABEL:NAME=VALUE,NAME=VALUE: also run this tree with those variables "
                         "(e.g. settings: FEEDHOUSE_SINK__BATCH_ROWS=20000); repeatable")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_round(args.trades)))
        return 0
    here = str(Path(__file__).resolve().parents[1])
    runs = {Path(here).name: (here, {})}
    for tree in args.tree:
        runs[Path(tree).name] = (str(Path(tree).resolve()), {})
    for spec in args.env:
        label, _, assigns = spec.partition(":")
        runs[label] = (here, dict(a.split("=", 1) for a in assigns.split(",") if a))
    trees = list(runs)
    results: dict[str, list[dict]] = defaultdict(list)
    for r in range(args.rounds):
        for tree in trees:  # each round in a fresh process, runs alternating
            path, extra = runs[tree]
            env = {**os.environ, **extra, "PYTHONPATH": path}
            out = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", "--trades",
                 str(args.trades)], env=env, cwd=path, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results[tree].append(res)
            print(f"round {r} {tree}: {res['trades_per_s']:,.0f} trades/s, "
                  f"{res['total']:.2f} µs/trade, load {res['load']:.1f}", flush=True)
    # every round's figure (the machine is shared: the spread is part of the result)
    print(f"\n{'µs/trade by round':18s}" + "".join(f"{t:>24s}" for t in trees))
    for key in (*STAGES, "total", "trades_per_s", "rows_per_insert"):
        cells = [" / ".join(f"{x[key]:,.2f}" if x[key] < 1000 else f"{x[key]:,.0f}"
                            for x in results[tree]) for tree in trees]
        print(f"{key:18s}" + "".join(f"{c:>24s}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
