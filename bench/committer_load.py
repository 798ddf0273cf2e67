"""The store hop alone, per linger: `python -m bench.committer_load [--lingers 0,30] [--rates ...]`.

A producer thread hands the real Committer + Writer (embedded chDB, market.trades) jobs of
prebuilt trade batches every millisecond at a fixed row rate, as the sink partitions do,
for `--seconds`; the figures are the process CPU time per row (user+sys: chDB's threads,
the committer and the producer) and the time from submit() to written (p50/p99) per job,
with inserts per second. No network, parsing or dedup: this isolates what `sink.linger_ms`
trades (CPU of inserts vs the wait of a row). Configurations alternate in one process.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dataflows.sink.batches import TRADES, make_batch, rows_table
from dataflows.sink.committer import Committer, Job
from dataflows.sink.writer import Writer
from feedhouse.core.config import load_settings
from feedhouse.store.migrations import init_schema

T0 = 1_767_225_600_000_000  # 2026-01-01 in µs
TICK_S = 0.001


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def batches(rate: int, seconds: float, start: int) -> list:
    per_tick = max(1, round(rate * TICK_S))
    ticks = int(seconds / TICK_S)
    out = []
    for t in range(ticks):
        first = start + t * per_tick
        rows = [("binance", "BTC-USDT", "BTCUSDT", str(first + i), 42_000.0, 0.01, "buy",
                 T0 + (first + i) * 1000, T0 + (first + i) * 1000 + 300)
                for i in range(per_tick)]
        out.append(make_batch(TRADES, "load", f"load:{first}", rows_table(TRADES, rows,
                                                                           {"feed": "load"})))
    return out


def one(home: Path, linger_ms: float, rate: int, seconds: float, batch_rows: int) -> dict:
    shutil.rmtree(home, ignore_errors=True)
    settings = load_settings(home=str(home), recovery=False)
    init_schema(settings)
    work = batches(rate, seconds, 0)
    waits: list[float] = []
    committer = Committer(Writer(settings), max_queued_rows=2 * batch_rows,
                          target_rows=batch_rows, linger_s=linger_ms / 1000)
    inserts0 = committer.writer.inserts
    try:
        c0, t0 = cpu(), time.monotonic()
        for k, batch in enumerate(work):
            due = t0 + k * TICK_S
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            submitted = time.monotonic()
            committer.submit(Job([batch], lambda _o, s=submitted: waits.append(
                time.monotonic() - s)))
        committer.drain()
        c1, t1 = cpu(), time.monotonic()
        inserts = committer.writer.inserts - inserts0
    finally:
        committer.close()
        shutil.rmtree(home, ignore_errors=True)
    rows = sum(b.rows for b in work)
    w = np.asarray(waits) * 1000
    return {"linger_ms": linger_ms, "rows_per_s": rate, "achieved_rows_per_s": round(rows / (t1 - t0)),
            "inserts_per_s": round(inserts / (t1 - t0), 1),
            "rows_per_insert": round(rows / max(inserts, 1), 1),
            "cpu_us_per_row": round((c1 - c0) / rows * 1e6, 2),
            "cpu_cores": round((c1 - c0) / (t1 - t0), 3),
            "wait_p50_ms": round(float(np.percentile(w, 50)), 1),
            "wait_p99_ms": round(float(np.percentile(w, 99)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lingers", default="0,30")
    parser.add_argument("--rates", default="2000,10000,120000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch-rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="feedhouse-committer-load-"))
    try:
        for _ in range(args.repeats):
            for rate in (int(x) for x in args.rates.split(",")):
                for linger in (float(x) for x in args.lingers.split(",")):
                    print(json.dumps(one(root / "h", linger, rate, args.seconds,
                                         args.batch_rows)), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
