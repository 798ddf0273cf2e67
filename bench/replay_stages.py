"""CPU µs per row of each stage of the buffer drain (`feedhouse replay`), on real code.

    python -m bench.replay_stages [--rows 1000000] [--rounds 2] [--threaded]

A buffer of `--rows` trade rows (the replay benchmark's rows, in the sink's batch size) is
filled once and copied for every round; each round drains it into a fresh embedded store
with `dataflows.sink.writer.drain_buffer`, its stages wrapped with timers:

- read: `LocalBuffer.load_many` (DuckDB payload read + Arrow IPC decode);
- probe: `_landed` (are a unit's first/last keys stored already?);
- insert: `feedhouse.store.insert.insert_arrow` (pyarrow writes the Arrow stream to a
  temp file, `INSERT ... FROM INFILE` on the chDB handle; before branch insert16 the
  file was the separate stage `file`);
- delete: `LocalBuffer.delete_many`; account: ledger/report counting per batch;
- outcome: the ops.replay_log and ledger inserts; open: opening the store.

By default the drain's read-ahead runs in the calling thread (`--threaded` keeps it in its
own thread), so the process CPU time (all threads: chDB's and DuckDB's included) of each
stage can be told apart; the total is measured around the whole drain either way.
Prints one JSON object per round, then a table (median over rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import dataflows.sink.drain as drain
from bench.replay import fill, trade_rows
from dataflows.sink.buffer import LocalBuffer
from dataflows.sink.writer import drain_buffer
from feedhouse.core.config import load_settings
from feedhouse.store.client import HeldWarehouse
from feedhouse.store.migrations import init_schema


class _Inline:
    """A stand-in ThreadPoolExecutor running each task at once, in the caller's thread."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


def _wrap(spent: dict, name: str, fn, clock):
    def timed(*args, **kwargs):
        start = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += clock() - start
    return timed


def one_round(base: Path, work: Path, threaded: bool) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    settings = load_settings(home=str(work), recovery=False)
    init_schema(settings)
    shutil.copy(base, settings.buffer_path)
    spent: dict[str, float] = defaultdict(float)
    clock = time.thread_time if threaded else time.process_time
    patches = [(LocalBuffer, "load_many", "read"), (LocalBuffer, "delete_many", "delete"),
               (drain, "_landed", "probe"), (drain, "insert_arrow", "insert"),
               (drain, "_account", "account"), (drain, "_write_outcome", "outcome"),
               (HeldWarehouse, "client", "open")]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in patches]
    for owner, attr, name in patches:
        setattr(owner, attr, _wrap(spent, name, getattr(owner, attr), clock))
    if not threaded:
        drain.ThreadPoolExecutor = _Inline
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        reports = drain_buffer(settings)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)
        drain.ThreadPoolExecutor = ThreadPoolExecutor
        shutil.rmtree(work, ignore_errors=True)
    rows = sum(r.rows for r in reports)
    us = {k: round(v / rows * 1e6, 3) for k, v in sorted(spent.items())}
    us["total_cpu"] = round(cpu / rows * 1e6, 3)
    return {"rows": rows, "rows_per_s": round(rows / wall), "us_per_row": us,
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_stages")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threaded", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="replay-stages-") as tmp:
        seed = load_settings(home=str(Path(tmp) / "seed"), recovery=False)
        fill(seed, trade_rows(args.rows), seed.sink.batch_rows)
        results = [one_round(seed.buffer_path, Path(tmp) / "run", args.threaded)
                   for _ in range(args.rounds)]
    for result in results:
        print(json.dumps(result))
    print(f"{'stage':10s} {'us/row (median)':>16s}")
    for stage in results[0]["us_per_row"]:
        print(f"{stage:10s} {statistics.median(r['us_per_row'][stage] for r in results):16.3f}")
    print(f"rows/s {statistics.median(r['rows_per_s'] for r in results):,.0f} "
          f"(load average {results[-1]['loadavg']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
