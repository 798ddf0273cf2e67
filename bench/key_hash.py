"""Dedup key hashing cost, before/after side by side: `python -m bench.key_hash`.

Hashes the composite keys of real trades (the drill captures, looped to `--keys`) with
the pipeline's `trade_keys` (xxh3-64, dataflows/dedup.py) and with the blake2b-64 it used
before (re-implemented here exactly as it was), alternating the two `--repeats` times in
one process so machine noise hits both alike. CPU time (process_time) per key, in ns,
including building the key text and the numpy array, as the dedup step pays it. Prints
one JSON line: median and min/max of each, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from hashlib import blake2b

import numpy as np

from bench.common import CAPTURES
from dataflows.dedup.window import trade_keys
from dataflows.sources.capture import parse_capture

CAPTURE_NAMES = ("BYBIT.ws.25.0", "KRAKEN.ws.48.0", "BITSTAMP.ws.1.0")


def blake2b_trade_keys(trades) -> np.ndarray:
    """The keys as dataflows/dedup.py computed them before xxh3 (key version 1)."""
    return np.fromiter(
        (int.from_bytes(blake2b(f"{t.venue}\x1f{t.symbol}\x1f{t.trade_id}".encode(),
                                digest_size=8).digest(), "little") for t in trades),
        dtype=np.uint64)


def corpus(n: int) -> list:
    trades = []
    for name in CAPTURE_NAMES:
        trades.extend(parse_capture(CAPTURES / name)[1].trades)
    out = []
    lap = 0
    while len(out) < n:  # laps get new ids, like the replay server's shifted laps
        out.extend(t._replace(trade_id=f"{t.trade_id}-{lap}") for t in trades)
        lap += 1
    return out[:n]


def ns_per_key(fn, trades, batch: int = 500) -> float:
    started = time.process_time_ns()
    for i in range(0, len(trades), batch):  # micro-batches, as the dedup step sees them
        fn(trades[i : i + batch])
    return (time.process_time_ns() - started) / len(trades)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    trades = corpus(args.keys)
    ns_per_key(trade_keys, trades[:5000])  # warm up
    ns_per_key(blake2b_trade_keys, trades[:5000])
    old, new = [], []
    for _ in range(args.repeats):
        old.append(ns_per_key(blake2b_trade_keys, trades))
        new.append(ns_per_key(trade_keys, trades))
    result = {
        "keys": args.keys, "repeats": args.repeats,
        "blake2b_ns_per_key": round(statistics.median(old), 1),
        "blake2b_min_max": [round(min(old), 1), round(max(old), 1)],
        "xxh3_ns_per_key": round(statistics.median(new), 1),
        "xxh3_min_max": [round(min(new), 1), round(max(new), 1)],
        "ratio": round(statistics.median(old) / statistics.median(new), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
