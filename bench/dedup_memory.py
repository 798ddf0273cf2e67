"""Dedup window memory per retained key and filter speed at 1M keys.

    .venv/bin/python -m bench.dedup_memory [--keys 1000000] [--batch 500]

Prints one JSON line: bytes/key measured with tracemalloc (numpy reports its buffers
to it), keys/s through `DedupWindow.filter`, and the snapshot time (pickle).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
import tracemalloc

import numpy as np

from dataflows.dedup.window import DedupWindow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    keys = rng.integers(1, 2**63, size=args.keys, dtype=np.uint64)
    t0 = 1_700_000_000_000_000
    ts = t0 + np.arange(args.keys, dtype=np.int64) * 100  # 10k keys/s of event time
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    win = DedupWindow(window_s=24 * 3600, allowed_lateness_s=5)
    started = time.perf_counter()
    for i in range(0, args.keys, args.batch):
        win.filter(keys[i : i + args.batch], ts[i : i + args.batch])
    elapsed = time.perf_counter() - started
    win.expire()  # settle runs/mid into main, as a long run does
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t = time.perf_counter()
    blob = pickle.dumps(win.snapshot())
    snap_s = time.perf_counter() - t
    rep = np.concatenate([keys[:5000]])
    dups = int((~win.filter(rep, np.full(rep.size, ts[-1]))).sum())
    print(json.dumps({
        "bench": "dedup_memory", "keys": len(win),
        "bytes_per_key": round((current - base) / len(win), 2),
        "peak_bytes_per_key": round((peak - base) / len(win), 2),
        "filter_keys_per_s": round(args.keys / elapsed),
        "snapshot_pickle_ms": round(snap_s * 1000, 1), "snapshot_bytes": len(blob),
        "repeats_found": dups,
    }))


if __name__ == "__main__":
    main()
