"""What the ingest process holds, sampled from inside it: for soak runs and operators.

`feedhouse run` starts a `FootprintSampler` thread that every `footprint_every_s` seconds
records

* the process: RSS and its peak, open file descriptors, threads, glibc malloc's in-use
  and free-but-held bytes (mallinfo2), Python's allocated blocks;
* the embedded store (read on the sink's committer thread, through the client the sink
  already holds: chDB allows one process per store, so nobody else may open it while the
  ingest runs): active parts per table, the caches' sizes (system.metrics *CacheBytes),
  ClickHouse's tracked memory;
* the DuckDB buffer file and the Bytewax recovery folder on disk;
* the dedup windows' keys and bytes (numpy arrays).

The latest sample goes into `run_status.json` under "footprint".

Python heap growth on demand: while the file `<home>/tracemalloc.on` exists, tracemalloc
traces (started when the file appears, stopped when it goes: it costs CPU, so it is off
by default) and each sample lists the source lines whose allocations grew most since
tracing started.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import struct
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from feedhouse.core.settings import Settings

log = logging.getLogger("feedhouse.footprint")
TRACEMALLOC_FILE = "tracemalloc.on"
TRACEMALLOC_EVERY_S = 30.0  # a comparison walks every traced block: not every sample
MB = 1024 * 1024

PARTS_SQL = ("SELECT database || '.' || table, count(), sum(rows), sum(bytes_on_disk) "
             "FROM system.parts WHERE active AND database IN ('market', 'iot', 'ops') "
             "GROUP BY database, table")
# parts replaced by merges stay in memory (and on disk) for old_parts_lifetime (480 s)
OUTDATED_SQL = "SELECT count(), sum(bytes_on_disk) FROM system.parts WHERE NOT active"
JEMALLOC_SQL = "SELECT stats FROM system.jemalloc_stats"
JEMALLOC_TOTALS = re.compile(
    r"Allocated: (\d+), active: (\d+), metadata: (\d+).*?resident: (\d+), mapped: (\d+)"
    r"(?:, retained: (\d+))?")
CACHES_SQL = ("SELECT metric, value FROM system.metrics WHERE (metric LIKE '%CacheBytes' "
              "OR metric LIKE '%CacheSize' OR metric = 'MemoryTracking') AND value != 0")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return None
    fn.restype = _MallInfo2
    return fn


_MALLINFO = _mallinfo2()
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's malloc.h


def tune_malloc(arena_max: int, mmap_threshold_kb: int) -> dict:
    """Bound what glibc malloc keeps (call before the ingest starts its threads).

    Measured (docs/operations-soak.md, 12-minute soak pair side by side, load 13-27): with
    glibc's defaults the memory freed but kept by glibc was 39-58 MB in the second half (Python's
    frames, batches and the dedup window's merges are freed on other threads than the ones
    that allocated them, and the sliding mmap threshold moves multi-MB blocks into the
    heaps); with 2 arenas and a fixed 256 KB threshold 7-27 MB. The RSS slope
    of those short runs did not change (276 vs 294 MB/h, both dominated by warm-up and by
    frames queued while the feeds were behind): this bounds a level, it is not the slope.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return {}
    done = {}
    if arena_max > 0 and mallopt(M_ARENA_MAX, arena_max):
        done["arena_max"] = arena_max
    if mmap_threshold_kb > 0:
        size = mmap_threshold_kb * 1024
        # a fixed threshold also stops glibc raising it after each free of a mmapped block;
        # the heap's free top goes back to the system beyond 4x the threshold
        if mallopt(M_MMAP_THRESHOLD, size) and mallopt(M_TRIM_THRESHOLD, 4 * size):
            done["mmap_threshold_kb"] = mmap_threshold_kb
    return done


def process_figures(pid: int | str = "self") -> dict:
    """RSS, peak RSS (MiB), threads and open fds of a process from /proc."""
    out: dict = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(
                    int(value.split()[0]) / 1024, 1)
            elif key == "Threads":
                out["threads"] = int(value)
            elif key in ("RssAnon", "RssFile"):
                out[key.lower() + "_mb"] = round(int(value.split()[0]) / 1024, 1)
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    return out


HEAP_MAX = 64 * MB  # glibc's per-thread arena heaps are this large and aligned
MAPPING_KINDS = ("glibc_heaps", "aligned_2m", "reservations", "stacks", "other_anon")


def read_maps(pid: int | str = "self") -> list[dict]:
    """Every mapping of /proc/<pid>/smaps: lo, hi, perm, path, rss (KiB)."""
    maps: list[dict] = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                maps.append({"lo": lo, "hi": hi, "perm": head[1], "rss": 0,
                             "path": head[5].strip() if len(head) > 5 else ""})
            elif head and head[0] == "Rss:" and maps:
                maps[-1]["rss"] = int(head[1])
    return maps


def _glibc_heap(mem, lo: int) -> bool:
    """glibc's heap_info at the start: arena pointer, previous heap, size, protected size."""
    try:
        mem.seek(lo)
        ar_ptr, prev, size, mprotect = struct.unpack("<4Q", mem.read(32))
    except (OSError, struct.error, ValueError, OverflowError):
        return False
    return (0 < size <= HEAP_MAX and size % 4096 == 0 and 0 < mprotect <= HEAP_MAX
            and (lo <= ar_ptr < lo + 4096 or (prev != 0 and prev % HEAP_MAX == 0)))


def label_maps(maps: list[dict], pid: int | str = "self") -> None:
    """Set each mapping's "kind": file, glibc_heaps (brk heap and per-thread arenas),
    stacks (above a 4 KiB guard page), reservations (>= 256 MiB: Arrow's mimalloc arena),
    aligned_2m (2 MiB aligned: chDB's jemalloc extents; those merged with unaligned
    neighbours land in other_anon), other_anon (Python's object arenas, glibc's mmapped
    blocks). A heuristic by address and size: compare kinds across runs, not exactly."""
    try:
        mem = open(f"/proc/{pid}/mem", "rb")  # noqa: SIM115 - closed below
    except OSError:
        mem = None
    prev: dict | None = None
    for m in maps:
        path, lo, hi = m["path"], m["lo"], m["hi"]
        if path.startswith("/"):
            m["kind"] = "file"
        elif path == "[heap]" or (not path and lo % HEAP_MAX == 0 and mem is not None
                                  and m["perm"].startswith("rw") and _glibc_heap(mem, lo)):
            m["kind"] = "glibc_heaps"
        elif path.startswith("[stack") or (
                prev is not None and prev["hi"] == lo and prev["hi"] - prev["lo"] == 4096
                and prev["perm"].startswith("---") and m["perm"].startswith("rw")):
            m["kind"] = "stacks"
        elif path:
            m["kind"] = "other"  # [vdso] and the like
        elif hi - lo >= 256 * MB:
            m["kind"] = "reservations"
        elif lo % (2 * MB) == 0 and hi % (2 * MB) == 0:
            m["kind"] = "aligned_2m"
        else:
            m["kind"] = "other_anon"
        prev = m
    if mem is not None:
        mem.close()


def mapping_figures(pid: int | str = "self") -> dict:
    """Resident MiB of the process's anonymous memory by the kind of mapping holding it."""
    maps = read_maps(pid)
    label_maps(maps, pid)
    out = dict.fromkeys(MAPPING_KINDS, 0.0)
    for m in maps:
        if m["kind"] in out:
            out[m["kind"]] += m["rss"] / 1024
    return {k: round(v, 1) for k, v in out.items()}


def heap_figures() -> dict:
    """This process's malloc and Python heap (MiB)."""
    out: dict = {"python_blocks": sys.getallocatedblocks()}
    if _MALLINFO is not None:
        info = _MALLINFO()
        # in use by malloc's callers (small + mmapped chunks), and free but kept by malloc
        out["malloc_in_use_mb"] = round((info.uordblks + info.hblkhd) / MB, 1)
        out["malloc_free_held_mb"] = round(info.fordblks / MB, 1)
        out["malloc_mmapped_mb"] = round(info.hblkhd / MB, 1)  # inside other_anon
    pool = pa.default_memory_pool()  # Arrow's own allocator (mimalloc or jemalloc)
    out["arrow_allocated_mb"] = round(pool.bytes_allocated() / MB, 1)
    out["arrow_peak_mb"] = round(pool.max_memory() / MB, 1)
    out["arrow_pool"] = pool.backend_name
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        out["tracemalloc_mb"] = round(current / MB, 1)
        out["tracemalloc_peak_mb"] = round(peak / MB, 1)
    return out


def store_figures(client) -> dict:
    """Active parts per table and the store's cache sizes, through an open client."""
    parts = {name: {"parts": int(n), "rows": int(rows), "bytes": int(size)}
             for name, n, rows, size in client.query(PARTS_SQL).result_rows}
    caches = {name: int(v) for name, v in client.query(CACHES_SQL).result_rows}
    outdated, outdated_bytes = client.query(OUTDATED_SQL).result_rows[0]
    return {"parts": parts, "caches": caches, "jemalloc": jemalloc_figures(client),
            "outdated_parts": int(outdated), "outdated_parts_bytes": int(outdated_bytes or 0)}


def jemalloc_figures(client) -> dict:
    """The store engine's own allocator (chDB is built with jemalloc; Python and DuckDB use
    glibc malloc): allocated, resident, retained MiB from malloc_stats_print's totals."""
    try:
        rows = client.query(JEMALLOC_SQL).result_rows
    except Exception:  # not a jemalloc build, or a server that refuses it
        return {}
    match = JEMALLOC_TOTALS.search("".join(r[0] for r in rows))
    if match is None:
        return {}
    names = ("allocated_mb", "active_mb", "metadata_mb", "resident_mb", "mapped_mb",
             "retained_mb")
    return {n: round(int(v) / MB, 1) for n, v in zip(names, match.groups(), strict=True)
            if v is not None}


def disk_bytes(path: Path) -> int:
    """Bytes of a file (and its -wal/.wal sibling) or of every file under a folder."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    total = 0
    for p in (path, Path(f"{path}.wal"), Path(f"{path}-wal")):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


class HeapTracer:
    """tracemalloc while a request file exists: top growth since tracing started."""

    def __init__(self, request: Path, top: int = 12) -> None:
        self.request = request
        self.top = top
        self.baseline: tracemalloc.Snapshot | None = None
        self.last_compare = 0.0
        self.growth: list[dict] = []

    def poll(self) -> list[dict] | None:
        wanted = self.request.exists()
        if wanted and self.baseline is None:
            tracemalloc.start(1)
            self.baseline = tracemalloc.take_snapshot()
            self.last_compare = time.monotonic()
            log.warning("tracemalloc on (%s exists)", self.request)
            return []
        if not wanted and self.baseline is not None:
            tracemalloc.stop()
            self.baseline, self.growth = None, []
            log.warning("tracemalloc off")
            return None
        if self.baseline is None:
            return None
        if time.monotonic() - self.last_compare >= TRACEMALLOC_EVERY_S:
            self.last_compare = time.monotonic()
            diff = tracemalloc.take_snapshot().compare_to(self.baseline, "lineno")
            self.growth = [
                {"where": str(d.traceback[0]), "size_kb": round(d.size_diff / 1024, 1),
                 "count": d.count_diff}
                for d in diff[: self.top]
            ]
        return self.growth


class FootprintSampler:
    """A daemon thread; `latest` is the last sample (a dict, {} before the first)."""

    def __init__(
        self,
        settings: Settings,
        every_s: float,
        on_store: Callable[[Callable], object] | None = None,
        dedup_bytes: Callable[[], dict] | None = None,
        on_buffer: Callable[[Callable], object] | None = None,
        queued_bytes: Callable[[], dict] | None = None,
    ) -> None:
        self.settings = settings
        self.every_s = every_s
        self.on_store = on_store  # runs fn(client-holder) where the store is open
        self.dedup_bytes = dedup_bytes
        self.on_buffer = on_buffer  # runs fn(local buffer) on the thread that owns it
        self.queued_bytes = queued_bytes  # frames waiting per exchange feed
        self.tracer = HeapTracer(Path(settings.home) / TRACEMALLOC_FILE)
        self.latest: dict = {}
        self._store: dict = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="feedhouse-footprint",
                                        daemon=True)

    def start(self) -> FootprintSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.tracer.baseline is not None:
            tracemalloc.stop()

    def _loop(self) -> None:
        while True:
            try:
                self.latest = self.sample()
            except Exception:  # a sample must never stop the ingest
                log.exception("footprint sample failed")
            if self._stop.wait(self.every_s):
                return

    def sample(self) -> dict:
        data = {"t": round(time.time(), 3), **process_figures(), **heap_figures()}
        try:
            data["anon_by_mapping_mb"] = mapping_figures()
        except (OSError, ValueError):  # no /proc: the other figures still count
            pass
        if self.on_store is not None:
            try:
                store = self.on_store(store_figures)
            except Exception as exc:  # ClickHouse down (outage): keep the last figures
                data["store_stale"] = type(exc).__name__
            else:
                if store is not None:
                    self._store = store
            data.update(self._store)
        data["buffer_file_bytes"] = disk_bytes(self.settings.buffer_path)
        if self.on_buffer is not None:
            try:
                duck = self.on_buffer(lambda buffer: buffer.memory_bytes())
            except Exception:  # the committer stopped: no figure
                duck = None
            if duck is not None:
                data["duckdb_memory_bytes"] = sum(duck.values())
        if self.settings.recovery_dir is not None:
            data["recovery_bytes"] = disk_bytes(self.settings.recovery_dir)
        if self.dedup_bytes is not None:
            data["dedup"] = self.dedup_bytes()
        if self.queued_bytes is not None:
            data["queued_frame_bytes"] = sum(self.queued_bytes().values())
        growth = self.tracer.poll()
        if growth is not None:
            data["tracemalloc_top"] = growth
        return data
