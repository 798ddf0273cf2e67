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
import time
from collections import defaultdict
from pathlib import Path

from dataflows.footprint import label_maps, read_maps

TWO_MB = 2 * 1024 * 1024


def label(maps: list[dict], pid: int) -> None:
    """The footprint's kinds (dataflows.footprint.label_maps), files by name."""
    label_maps(maps, pid)
    for m in maps:
        kind = m["kind"]
        m["label"] = {"glibc_heaps": "glibc-main" if m["path"] == "[heap]" else "glibc-arena",
                      "file": "file:" + Path(m["path"]).name, "other": m["path"],
                      "stacks": "stack", "reservations": "anon-huge",
                      "aligned_2m": "anon-2m", "other_anon": "anon"}[kind]


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
            keep = [{k: m.get(k, 0) for k in ("lo", "hi", "perm", "label", "rss", "anon")}
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
