"""Where a paced run's time goes: `python -m bench.latency_profile --rate 2000`.

One run of the latency benchmark's pipeline (bench.latency.one_run: the served corpus
paced by the session server, the dataflow in this process, default settings plus any
FEEDHOUSE_* variables) with, over the same measured window:
- CPU per thread (/proc/self/task, Python threads by name, chDB's by their own);
- inserts per second per table, rows per insert, wall and committer-thread CPU per insert,
  and how many days (partitions of market.trades) each trades insert touched;
- the committer's holds outside inserts (candle builds, replay probes, store hand-over)
  and the epoch drains (the sink's snapshot waits for the committer);
- of the rows slower than the run's p99, the share whose receive -> acked span overlaps
  a drain or a candle build.
Experiments (never settings of a real run): `--epoch-s S` runs the dataflow with S-second
epochs; `--skip-epoch-drain` makes the snapshots not wait for the committer (unsafe: it
measures what the wait costs). Prints a report; writes nothing under bench/results.
"""

from __future__ import annotations

import argparse
import collections
import os
import threading
import time
from datetime import timedelta

import numpy as np
import pyarrow.compute as pc

from bench import latency
from bench.common import Config
from bench.mqtt_ingest import threads_cpu_s
from dataflows.sink import stage
from dataflows.sink.committer import Committer
from dataflows.sink.writer import Writer
from feedhouse.store.candles import PeriodicCandles


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads, Python threads by name, chDB's by theirs."""
    return threads_cpu_s(os.getpid(), {t.native_id: t.name for t in threading.enumerate()})


class Recorder:
    """Wraps the writer, the committer and the candle step (no change to their code)."""

    def __init__(self) -> None:
        self.inserts: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0, 0.0, 0.0])
        self.days: collections.Counter = collections.Counter()
        self.spans: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
        self.holds: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        self.marks: list[tuple[float, dict, dict]] = []
        self.rows: list = []
        self._undo: list = []

    def _patch(self, owner, name: str, value) -> None:
        self._undo.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    def install(self, skip_drain: bool) -> None:
        insert_once = Writer.insert_once

        def timed_insert(writer, batch):
            w0, c0 = time.perf_counter(), time.thread_time()
            insert_once(writer, batch)
            s = self.inserts[batch.table]
            s[0] += 1
            s[1] += batch.rows
            s[2] += time.perf_counter() - w0
            s[3] += time.thread_time() - c0
            if batch.table == "market.trades":
                days = pc.cast(batch.data.column("exchange_ts"), "date32")
                self.days[pc.count_distinct(days).as_py()] += 1

        self._patch(Writer, "insert_once", timed_insert)
        for owner, name, label in ((PeriodicCandles, "maybe_build", "candles"),
                                   (Committer, "drain", "drain"),
                                   (Writer, "maybe_replay", "replay_probe"),
                                   (Writer, "release_if_wanted", "release")):
            self._patch(owner, name, self._spanned(owner.__dict__[name], label))
        cpu_self = latency._cpu_self

        def marked() -> float:  # control() takes the window's marks through _cpu_self
            self.marks.append((time.monotonic(), thread_cpu(),
                               {k: list(v) for k, v in self.inserts.items()}))
            return cpu_self()

        self._patch(latency, "_cpu_self", marked)
        hops_ms = latency.Probe.hops_ms

        def kept(probe):
            self.rows = list(probe.rows)
            return hops_ms(probe)

        self._patch(latency.Probe, "hops_ms", kept)
        if skip_drain:
            checkpoint = stage._SinkGroup.__dict__["checkpoint"].__func__

            def no_wait(cls, final: bool = False) -> None:
                committer = cls.committer
                if final or committer is None:
                    return checkpoint(cls, final)
                committer.drain = lambda: None
                try:
                    return checkpoint(cls, final)
                finally:
                    del committer.drain

            self._patch(stage._SinkGroup, "checkpoint", classmethod(no_wait))

    def _spanned(self, fn, label: str):
        def wrapper(*args, **kw):
            w0, m0 = time.time_ns() // 1000, time.perf_counter()
            result = fn(*args, **kw)
            self.holds[label].append((time.monotonic(), (time.perf_counter() - m0) * 1e3))
            if label != "candles" or result is not None:  # a candle build ran
                self.spans[label].append((w0, time.time_ns() // 1000))
            return result
        return wrapper

    def uninstall(self) -> None:
        for owner, name, value in reversed(self._undo):
            setattr(owner, name, value)


def report(rec: Recorder, hops: dict, n: int, rate_acked: float, cpu: dict, rate: int) -> None:
    total = hops["total"]
    print(f"offered {rate}/s, rows {n}, acked {rate_acked:.0f}/s; total p50 "
          f"{np.percentile(total, 50):.1f} p95 {np.percentile(total, 95):.1f} p99 "
          f"{np.percentile(total, 99):.1f} ms; ingest CPU {cpu['ingest_cpu_us_per_trade']:.1f} "
          f"µs/trade")
    for hop in latency.HOPS[:-1]:
        h = hops[hop]
        print(f"  {hop:24s} p50 {np.percentile(h, 50):6.1f}  p95 {np.percentile(h, 95):6.1f}  "
              f"p99 {np.percentile(h, 99):6.1f} ms")
    rows = np.asarray(rec.rows, dtype=np.int64).reshape(-1, 4)
    spent = (rows[:, 3] - rows[:, 0]) / 1000
    slow = rows[spent > np.percentile(spent, 99)]
    print(f"rows slower than p99: {len(slow)}")
    for label in ("drain", "candles"):
        spans = np.asarray(rec.spans.get(label, []), dtype=np.int64).reshape(-1, 2)
        if not len(spans):
            continue
        hit = np.zeros(len(slow), bool)
        for a, b in spans:
            hit |= (slow[:, 0] <= b) & (slow[:, 3] >= a)
        d = (spans[:, 1] - spans[:, 0]) / 1000
        print(f"  during a {label}: {hit.mean() * 100:.0f} % ({len(spans)} of them, p50 "
              f"{np.percentile(d, 50):.1f} ms, max {d.max():.1f} ms)")
    (t0, cpu0, ins0), (t1, cpu1, ins1) = rec.marks[0], rec.marks[-1]
    window = t1 - t0
    for table, v in ins1.items():
        u = ins0.get(table, [0, 0, 0.0, 0.0])
        k, r, w, c = (v[i] - u[i] for i in range(4))
        print(f"{table:20s} {k / window:6.1f} inserts/s, {r / max(k, 1):7.1f} rows each, "
              f"{w / max(k, 1) * 1e3:5.2f} ms wall, {c / max(k, 1) * 1e3:5.2f} ms committer CPU")
    print(f"days per trades insert: {dict(rec.days)}")
    for label, held in rec.holds.items():
        d = sorted(ms for t, ms in held if t0 <= t <= t1)
        if d and d[-1] >= 1:
            print(f"held by {label}: {len(d)} calls, {sum(d):.0f} ms, max {d[-1]:.1f} ms")
    by_name = collections.Counter({name: c - cpu0.get(name, 0.0) for name, c in cpu1.items()})
    print(f"CPU over {window:.1f} s: {sum(by_name.values()) / window:.3f} cores")
    for name, c in by_name.most_common():
        if c / window >= 0.005:
            print(f"  {name:24s} {c / window:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=2000, help="trades/s offered")
    ap.add_argument("--epoch-s", type=float, help="experiment: epochs of this length")
    ap.add_argument("--skip-epoch-drain", action="store_true",
                    help="experiment (unsafe): snapshots do not wait for the committer")
    args = ap.parse_args()
    cfg = Config()
    served, speed = latency.paced_corpus(cfg, args.rate)
    if args.epoch_s:
        import dataflows.runner as runner

        runner.EPOCH = timedelta(seconds=args.epoch_s)
    rec = Recorder()
    rec.install(args.skip_epoch_drain)
    try:
        hops, n, acked, cpu = latency.one_run(cfg, served, cfg.workdir / "latency_profile",
                                              speed)
    finally:
        rec.uninstall()
    report(rec, hops, n, acked, cpu, args.rate)


if __name__ == "__main__":
    main()
