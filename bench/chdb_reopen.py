"""What one close-and-reopen of an embedded store leaves behind in the process.

    .venv/bin/python -m bench.chdb_reopen [--reopens 100] [--insert]

chDB runs one engine per process; closing its last connection shuts the engine down and
the next connect starts it again. This opens a fresh store, then closes and reopens it N
times (with `--insert`, one small insert each time, as the ingest's flushes do) and
prints one JSON line: threads, open fds and RSS before and after, per reopen. The ingest's
sink used to let go of the store every 30 s (HeldWarehouse max_hold_s): that is what
made its threads, fds and RSS climb in `feedhouse drill soak` (docs/operations-soak.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import chdb

from dataflows.footprint import process_figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reopens", type=int, default=100)
    ap.add_argument("--insert", action="store_true", help="one small insert per reopen")
    args = ap.parse_args()
    path = str(Path(tempfile.mkdtemp(prefix="feedhouse-bench-reopen-")) / "store")
    conn = chdb.connect(path)
    conn.query("CREATE TABLE t (k UInt64, v String) ENGINE = ReplacingMergeTree ORDER BY k")
    conn.query("INSERT INTO t SELECT number, toString(number) FROM numbers(1000)")
    conn.close()
    conn = chdb.connect(path)  # the engine's first restart: warm-up, not counted
    conn.close()
    before = process_figures()
    started = time.perf_counter()
    for i in range(args.reopens):
        conn = chdb.connect(path)
        if args.insert:
            conn.query(f"INSERT INTO t SELECT number + {(i + 1) * 1000}, toString(number) "
                       "FROM numbers(1000)")
        conn.close()
    elapsed = time.perf_counter() - started
    after = process_figures()
    n = max(args.reopens, 1)
    print(json.dumps({
        "reopens": args.reopens, "insert": args.insert, "chdb": chdb.__version__,
        "threads_before": before["threads"], "threads_after": after["threads"],
        "threads_per_reopen": round((after["threads"] - before["threads"]) / n, 2),
        "fds_before": before["fds"], "fds_after": after["fds"],
        "rss_before_mb": before["rss_mb"], "rss_after_mb": after["rss_mb"],
        "rss_per_reopen_mb": round((after["rss_mb"] - before["rss_mb"]) / n, 2),
        "ms_per_reopen": round(elapsed / n * 1000, 1),
    }))


if __name__ == "__main__":
    main()
