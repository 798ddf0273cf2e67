"""Dedup window memory per retained key (bench/dedup_memory.py, the pipeline's own tool).

Each repeat runs `python -m bench.dedup_memory --keys N` in a fresh process (tracemalloc
of the window's arrays after N random 64-bit keys went through `DedupWindow.filter` in
micro-batches of 500) and reads its JSON line.
"""

from __future__ import annotations

import json
import subprocess

from bench.common import PYTHON, ROOT, Config, Figure, measured, shell

GOAL = "<= 64"


def run(cfg: Config) -> list[Figure]:
    args = [PYTHON, "-m", "bench.dedup_memory", "--keys", str(cfg.dedup_keys)]
    results = []
    for _ in range(min(cfg.repeats, 3)):
        out = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=ROOT,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    settings = {"keys": cfg.dedup_keys, "batch": 500, "window_s": 86400,
                "keys_retained": results[-1]["keys"],
                "repeats_found_of_5000": results[-1]["repeats_found"]}
    command = shell(["python", "-m", "bench.dedup_memory", "--keys", str(cfg.dedup_keys)])
    return [
        measured("dedup_bytes_per_key", "bytes/key", command,
                 [r["bytes_per_key"] for r in results], goal=GOAL, settings=settings),
        measured("dedup_peak_bytes_per_key", "bytes/key", command,
                 [r["peak_bytes_per_key"] for r in results], settings=settings,
                 note="peak during merges (tracemalloc)"),
        measured("dedup_filter_keys_per_s", "keys/s", command,
                 [r["filter_keys_per_s"] for r in results], settings=settings),
    ]
