"""The soak drill's measurements: sampling the ingest over time (its run_status.json
footprint, RSS from /proc), the arithmetic of the verdict (RSS slope after warm-up, parts
growth) and the RSS chart."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from feedhouse.app.drills.process import RunProcess, vm_hwm_mb, wait_for_status
from quality.svg import line_chart

SAMPLES_FILE = "soak_samples.jsonl"


# --- the arithmetic (pure) ---------------------------------------------------------------


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value units per hour; None
    with fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return sxy / sxx * 3600.0


def after_warmup(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The second half of a run by time (the first half is warm-up: the dedup window
    fills, caches and arenas grow to their working size)."""
    if not points:
        return []
    t0, t1 = points[0][0], points[-1][0]
    middle = t0 + (t1 - t0) / 2
    return [p for p in points if p[0] >= middle]


def warm_slope(points: list[tuple[float, float]]) -> float | None:
    """MB (or parts, fds...) per hour over the second half of the run."""
    return slope_per_hour(after_warmup(points))


def growing(points: list[tuple[float, float]], slack: float = 5.0) -> bool:
    """A growth trend after warm-up: the mean of the run's last quarter above the mean of
    its second quarter by more than half plus `slack` (active parts saw-tooth with inserts
    and merges; a table whose merges fall behind climbs steadily)."""
    if len(points) < 8:
        return False
    t0, t1 = points[0][0], points[-1][0]
    q = (t1 - t0) / 4

    def mean(lo: float, hi: float) -> float:
        vals = [v for t, v in points if lo <= t <= hi]
        return sum(vals) / len(vals) if vals else 0.0

    return mean(t0 + 3 * q, t1) > mean(t0 + q, t0 + 2 * q) * 1.5 + slack


# --- sampling -------------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Every `every_s`: the ingest's RSS and its own footprint report, into a JSONL file."""

    def __init__(self, ingest: RunProcess, path: Path, every_s: float) -> None:
        self.ingest, self.path, self.every_s = ingest, path, every_s
        self.samples: list[dict] = []
        self.outage = False
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)

    def start(self) -> Sampler:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        with self.path.open("a") as out:
            while not self._stop.is_set():
                sample = self.sample()
                if sample is not None:
                    self.samples.append(sample)
                    out.write(json.dumps(sample) + "\n")
                    out.flush()
                self._stop.wait(self.every_s)

    def sample(self) -> dict | None:
        proc = self.ingest.proc
        if proc is None or proc.poll() is not None:
            return None
        rss = rss_mb(proc.pid)
        if rss is None:
            return None
        status = wait_for_status(self.ingest.status_file, lambda s: True, 1) or {}
        fp = status.get("footprint", {})
        parts = fp.get("parts", {})
        return {
            "t": round(time.monotonic() - self.started, 2),
            "rss_mb": round(rss, 1),
            "peak_rss_mb": round(vm_hwm_mb(proc.pid) or rss, 1),
            "cpu_s": cpu_s(proc.pid),
            "outage": self.outage,
            "received": sum(f.get("received", 0) for f in status.get("feeds", {}).values()),
            "buffered_rows": status.get("buffered_rows", 0),
            "footprint_age_s": round(time.time() - fp["t"], 1) if "t" in fp else None,
            "threads": fp.get("threads"),
            "fds": fp.get("fds"),
            "rss_anon_mb": fp.get("rssanon_mb"),
            "rss_file_mb": fp.get("rssfile_mb"),
            "malloc_in_use_mb": fp.get("malloc_in_use_mb"),
            "malloc_free_held_mb": fp.get("malloc_free_held_mb"),
            "malloc_mmapped_mb": fp.get("malloc_mmapped_mb"),
            "anon_by_mapping_mb": fp.get("anon_by_mapping_mb"),
            "arrow_allocated_mb": fp.get("arrow_allocated_mb"),
            "python_blocks": fp.get("python_blocks"),
            "tracemalloc_mb": fp.get("tracemalloc_mb"),
            "store_tracked_mb": _mb(fp.get("caches", {}).get("MemoryTracking")),
            "jemalloc_resident_mb": fp.get("jemalloc", {}).get("resident_mb"),
            "jemalloc_allocated_mb": fp.get("jemalloc", {}).get("allocated_mb"),
            "caches_mb": {k: _mb(v) for k, v in fp.get("caches", {}).items()
                          if k != "MemoryTracking"},
            "parts": {t: p["parts"] for t, p in parts.items()},
            "outdated_parts": fp.get("outdated_parts"),
            "buffer_file_mb": _mb(fp.get("buffer_file_bytes")),
            "duckdb_mb": _mb(fp.get("duckdb_memory_bytes")),
            "queued_frames_mb": _mb(fp.get("queued_frame_bytes")),
            "source_paused_s": round(sum(status.get("source_paused_s", {}).values()), 1),
            "recovery_mb": _mb(fp.get("recovery_bytes")),
            "dedup_mb": _mb(sum(fp.get("dedup", {}).values())) if fp.get("dedup") else None,
            "store_stale": fp.get("store_stale"),
            "tracemalloc_top": fp.get("tracemalloc_top"),
        }


def _mb(value) -> float | None:
    return None if value is None else round(value / (1024 * 1024), 2)


# --- the summary ---------------------------------------------------------------------------


def summarize(samples: list[dict]) -> dict:
    """Slopes after warm-up, peak RSS and its composition, parts/fds/threads at the end."""
    if not samples:
        return {"samples": 0}
    rss = [(s["t"], s["rss_mb"]) for s in samples]
    peak = max(samples, key=lambda s: s["rss_mb"])
    last = samples[-1]
    with_parts = [s for s in samples if s.get("parts")]
    tables = sorted({t for s in with_parts for t in s["parts"]})
    parts_slope = {
        t: _round(warm_slope([(s["t"], s["parts"].get(t, 0)) for s in with_parts]))
        for t in tables
    }

    def series(key: str) -> list[tuple[float, float]]:
        return [(s["t"], s[key]) for s in samples if s.get(key) is not None]

    composition_keys = ("rss_anon_mb", "anon_by_mapping_mb", "rss_file_mb", "malloc_in_use_mb",
                        "malloc_free_held_mb", "arrow_allocated_mb", "store_tracked_mb",
                        "jemalloc_resident_mb",
                        "jemalloc_allocated_mb", "caches_mb", "dedup_mb",
                        "tracemalloc_mb", "buffer_file_mb", "duckdb_mb", "queued_frames_mb", "threads", "fds")
    end_parts = (with_parts[-1]["parts"] if with_parts else {})
    return {
        "samples": len(samples),
        "seconds": round(last["t"] - samples[0]["t"], 1),
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_end_mb": last["rss_mb"],
        "rss_slope_mb_per_h": _round(warm_slope(rss)),
        "rss_slope_whole_run_mb_per_h": _round(slope_per_hour(rss)),
        "peak_rss_mb": max(s.get("peak_rss_mb") or s["rss_mb"] for s in samples),
        "peak_at_s": peak["t"],
        "peak_composition": {k: peak.get(k) for k in composition_keys},
        "threads_slope_per_h": _round(warm_slope(series("threads"))),
        "fds_slope_per_h": _round(warm_slope(series("fds"))),
        "malloc_in_use_slope_mb_per_h": _round(warm_slope(series("malloc_in_use_mb"))),
        "store_tracked_slope_mb_per_h": _round(warm_slope(series("store_tracked_mb"))),
        "jemalloc_resident_slope_mb_per_h": _round(warm_slope(series("jemalloc_resident_mb"))),
        # what the engine's code holds (resident minus this: dirty pages, thread caches)
        "jemalloc_allocated_slope_mb_per_h": _round(warm_slope(series("jemalloc_allocated_mb"))),
        "rss_anon_slope_mb_per_h": _round(warm_slope(series("rss_anon_mb"))),
        "malloc_free_held_slope_mb_per_h": _round(warm_slope(series("malloc_free_held_mb"))),
        # which kind of mapping the anonymous memory grows in (dataflows.footprint.label_maps)
        "anon_by_mapping_slope_mb_per_h": {
            kind: _round(warm_slope([(s["t"], s["anon_by_mapping_mb"][kind]) for s in samples
                                     if (s.get("anon_by_mapping_mb") or {}).get(kind)
                                     is not None]))
            for kind in sorted({k for s in samples for k in (s.get("anon_by_mapping_mb") or {})})},
        # frames waiting for the dataflow: grows while the feeds fall behind (backlog)
        "queued_frames_slope_mb_per_h": _round(warm_slope(series("queued_frames_mb"))),
        "queued_frames_max_mb": max((v for _, v in series("queued_frames_mb")), default=None),
        "source_paused_s_end": last.get("source_paused_s"),
        "outdated_parts_max": max((v for _, v in series("outdated_parts")), default=None),
        "parts_end": end_parts,
        "parts_max": {t: max(s["parts"].get(t, 0) for s in with_parts) for t in tables},
        "parts_slope_per_h": parts_slope,
        "parts_growing": [t for t in tables if growing(
            [(s["t"], s["parts"].get(t, 0)) for s in with_parts])],
        "fds_end": last.get("fds"),
        "threads_end": last.get("threads"),
        "caches_end_mb": last.get("caches_mb"),
        "buffer_file_end_mb": last.get("buffer_file_mb"),
        "recovery_end_mb": last.get("recovery_mb"),
        "dedup_end_mb": last.get("dedup_mb"),
        # the ingest's CPU at this load, and whether it kept up (a host that falls behind
        # queues frames, which shows in the memory figures above)
        **_cpu(samples),
    }


def _cpu(samples: list[dict]) -> dict:
    """Cores the ingest used on average after warm-up, and per frame received."""
    used = [s for s in after_warmup([(s["t"], s) for s in samples]) if s[1].get("cpu_s") is not None]
    if len(used) < 2:
        return {}
    (t0, first), (t1, last) = used[0], used[-1]
    cpu = last["cpu_s"] - first["cpu_s"]
    frames = last["received"] - first["received"]
    return {"ingest_cores": _round(cpu / (t1 - t0), 2) if t1 > t0 else None,
            "ingest_cpu_us_per_frame": _round(cpu * 1e6 / frames, 1) if frames else None,
            "frames_per_s": _round(frames / (t1 - t0), 0) if t1 > t0 else None}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def rss_chart(samples: list[dict], outages: list[tuple[float, float]], title: str) -> str:
    series = {"RSS MB": [(s["t"] / 60, s["rss_mb"]) for s in samples]}
    anon = [(s["t"] / 60, s["rss_anon_mb"]) for s in samples if s.get("rss_anon_mb")]
    if anon:
        series["anonymous RSS MB"] = anon
    tracked = [(s["t"] / 60, s["store_tracked_mb"]) for s in samples
               if s.get("store_tracked_mb") is not None]
    if tracked:
        series["ClickHouse tracked MB"] = tracked
    malloc = [(s["t"] / 60, s["malloc_in_use_mb"]) for s in samples
              if s.get("malloc_in_use_mb") is not None]
    if malloc:
        series["malloc in use MB"] = malloc
    half = samples[0]["t"] + (samples[-1]["t"] - samples[0]["t"]) / 2 if samples else 0
    bands = [(a / 60, b / 60, "ClickHouse unreachable (fault injector)") for a, b in outages]
    return line_chart(title, series, x_unit=" min", y_unit=" MB", bands=bands,
                      marks=[(half / 60, "slope measured from here")])


# --- the drill -------------------------------------------------------------------------------


