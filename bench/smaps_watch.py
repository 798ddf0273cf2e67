"""Which memory mappings of a running process grow: /proc/<pid>/smaps sampled over time.

    python -m bench.smaps_watch --status STORE/drill/run_status.json --every 30 --out F.jsonl
    python -m bench.smaps_watch --report F.jsonl [--from-s 240]

Every sample lists each mapping with its address range, permissions, Rss and Anonymous
KiB, and a label:

* `file:<name>` file-backed (shared libraries: chDB's engine code);
* `glibc-main` the brk heap (glibc's main arena);
* `glibc-arena` a glibc per-thread arena heap: starts on a 64 MiB boundary and begins
  with glibc's `heap_info` (arena pointer, previous heap, size <= 64 MiB), read from
  /proc/<pid>/mem;
* `stack` [stack], or an anonymous read-write mapping directly above a 4 KiB guard page
  (thread stacks);
* `anon-huge` other anonymous mappings of 256 MiB or more of address space (allocators'
  reservations: mimalloc's arenas, jemalloc's retained extents);
* `anon-2m` anonymous mappings starting and ending on 2 MiB boundaries (jemalloc's
  extents: chDB's engine and DuckDB each link a jemalloc);
* `anon` the rest (Python's 1 MiB obmalloc arenas, merged by the kernel when adjacent;
  numpy/Arrow buffers mmapped by glibc above its mmap threshold; jemalloc extents).

The report compares the first sample at or after `--from-s` with the last: RSS growth per
label and the mappings that grew most (with their address range, so a run with another
allocator can be compared mapping by mapping).
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections import defaultdict
from pathlib import Path

HEAP_MAX = 64 * 1024 * 1024
HUGE = 256 * 1024 * 1024
TWO_MB = 2 * 1024 * 1024


def read_maps(pid: int) -> list[dict]:
    maps: list[dict] = []
    cur: dict | None = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"lo": lo, "hi": hi, "perm": head[1],
                       "path": head[5].strip() if len(head) > 5 else "", "rss": 0, "anon": 0}
                maps.append(cur)
            elif cur is not None and head[0] in ("Rss:", "Anonymous:"):
                cur["rss" if head[0] == "Rss:" else "anon"] = int(head[1])
    return maps


def _glibc_heap(mem, lo: int) -> bool:
    try:
        mem.seek(lo)
        ar_ptr, prev, size, mprotect = struct.unpack("<4Q", mem.read(32))
    except (OSError, struct.error, ValueError):
        return False
    return (0 < size <= HEAP_MAX and size % 4096 == 0 and 0 < mprotect <= HEAP_MAX
            and (lo <= ar_ptr < lo + 4096 or (prev and prev % HEAP_MAX == 0)))


def label(maps: list[dict], pid: int) -> None:
    try:
        mem = open(f"/proc/{pid}/mem", "rb")  # noqa: SIM115 - closed below
    except OSError:
        mem = None
    prev = None
    for m in maps:
        size = m["hi"] - m["lo"]
        path = m["path"]
        if path.startswith("/"):
            m["label"] = "file:" + Path(path).name
        elif path == "[heap]":
            m["label"] = "glibc-main"
        elif path.startswith("[stack"):
            m["label"] = "stack"
        elif path:
            m["label"] = path
        elif (m["perm"].startswith("rw") and m["lo"] % HEAP_MAX == 0 and mem is not None
              and _glibc_heap(mem, m["lo"])):
            m["label"] = "glibc-arena"
        elif (prev is not None and prev["hi"] == m["lo"] and prev["perm"].startswith("---")
              and prev["hi"] - prev["lo"] == 4096 and m["perm"].startswith("rw")):
            m["label"] = "stack"
        elif size >= HUGE:
            m["label"] = "anon-huge"
        elif m["lo"] % TWO_MB == 0 and m["hi"] % TWO_MB == 0:
            m["label"] = "anon-2m"  # jemalloc's extents (chDB's engine, DuckDB) are 2 MiB aligned
        else:
            m["label"] = "anon"
        prev = m
    if mem is not None:
        mem.close()


def watch(status: Path, every: float, out: Path) -> None:
    pid = None
    t0 = time.monotonic()
    while pid is None:
        try:
            pid = int(json.loads(status.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            time.sleep(1)
    with out.open("a") as f:
        while True:
            try:
                maps = read_maps(pid)
            except OSError:
                return
            label(maps, pid)
            keep = [{k: m[k] for k in ("lo", "hi", "perm", "label", "rss", "anon")}
                    for m in maps if m["rss"]]
            f.write(json.dumps({"t": round(time.monotonic() - t0, 1), "pid": pid,
                                "maps": keep}) + "\n")
            f.flush()
            time.sleep(every)


def by_label(sample: dict) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for m in sample["maps"]:
        out[m["label"]] += m["rss"]
    return out


def report(path: Path, from_s: float) -> None:
    samples = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    for s in samples:  # files written before the anon-2m label
        for m in s["maps"]:
            if m["label"] == "anon" and m["lo"] % TWO_MB == 0 and m["hi"] % TWO_MB == 0:
                m["label"] = "anon-2m"
    a = next(s for s in samples if s["t"] >= from_s)
    b = samples[-1]
    hours = (b["t"] - a["t"]) / 3600
    la, lb = by_label(a), by_label(b)
    print(f"{path}: t {a['t']:.0f} -> {b['t']:.0f} s")
    print(f"{'label':28} {'MB then':>8} {'MB end':>8} {'MB/h':>8}")
    for k in sorted(set(la) | set(lb), key=lambda k: -(lb.get(k, 0) - la.get(k, 0))):
        d = (lb.get(k, 0) - la.get(k, 0)) / 1024
        if abs(d) >= 0.5 or lb.get(k, 0) > 10240:
            print(f"{k[:28]:28} {la.get(k, 0) / 1024:8.1f} {lb.get(k, 0) / 1024:8.1f} "
                  f"{d / hours:8.0f}")
    before = {m["lo"]: m for m in a["maps"]}
    grew = []
    for m in b["maps"]:
        old = before.get(m["lo"], {}).get("rss", 0)
        grew.append((m["rss"] - old, m, old))
    grew.sort(key=lambda x: -x[0])
    print("mappings that grew most (KiB):")
    for d, m, old in grew[:12]:
        print(f"  {m['lo']:#x}-{m['hi']:#x} {(m['hi'] - m['lo']) >> 20:6d} MiB {m['perm']} "
              f"{m['label']:14} rss {old} -> {m['rss']} (+{d})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--status", type=Path)
    p.add_argument("--every", type=float, default=30.0)
    p.add_argument("--out", type=Path)
    p.add_argument("--report", type=Path)
    p.add_argument("--from-s", type=float, default=240.0)
    args = p.parse_args()
    if args.report:
        report(args.report, args.from_s)
    else:
        watch(args.status, args.every, args.out)


if __name__ == "__main__":
    main()
