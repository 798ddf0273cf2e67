"""Run the ingest dataflow in this process until stopped (signal, `seconds`, or sources end).

Recovery is on by default: Bytewax snapshots every epoch (1 s) into `recovery_dir`
(initialized here when missing). SIGINT/SIGTERM set a stop flag: source partitions end,
the sink flushes what it holds and closes, so a stop loses nothing and keeps the epoch.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bytewax.inputs import Source
from bytewax.recovery import RecoveryConfig
from bytewax.testing import cluster_main, run_main

from dataflows import metrics
from dataflows.cluster import Cluster, Workers
from dataflows.dedup.recovery_keys import check_recovery_keys
from dataflows.flow import build_flow
from dataflows.footprint import FootprintSampler, tune_malloc
from dataflows.malloc_trim import MallocTrimmer
from dataflows.metrics import start_metrics_server
from dataflows.sink.stage import on_buffer, on_store
from dataflows.sink.stats import STATS
from dataflows.sources.exchange import queued_bytes
from dataflows.venues.stored import convert_stored
from feedhouse.core.settings import FeedSettings, Settings
from feedhouse.store.classify import ErrorClass, classify_error, error_code, first_line
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import init_schema

log = logging.getLogger("feedhouse.run")
EPOCH = timedelta(seconds=1)
ACCESS_DENIED = 497  # ClickHouse error code


GC_GEN0 = 20_000  # allocations between young-generation collections (CPython: 700)


def tune_gc(gen0: int = GC_GEN0) -> None:
    """Fewer cyclic-GC passes on the hot path. Every Trade/Quote is a GC-tracked tuple, so
    with CPython's 700 a collection ran every few hundred records, and each older one
    walked every object alive (imports, settings, venue tables). Start-up's objects are
    frozen out of the collections; a young collection runs every GC_GEN0 allocations.
    Measured (bench.e2e_stages, side by side, 2 rounds, load 14-18): parse 3.44 -> 2.40
    µs/trade, the whole exchange path 19.0 -> 16.3 µs/trade. The hot path makes no
    reference cycles: memory stays bounded by the records in flight."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, 10, 10)


def recovery_config(settings: Settings) -> RecoveryConfig | None:
    if not settings.recovery:
        return None
    from bytewax.recovery import init_db_dir

    folder = Path(settings.recovery_dir or settings.home / "recovery")
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.glob("part-*.sqlite3")):
        init_db_dir(folder, 1)
    else:  # dedup windows hashed another way cannot be resumed (one clear line)
        check_recovery_keys(folder)
    return RecoveryConfig(str(folder))


def status_path(settings: Settings, index: int = 0) -> Path:
    """JSON status `run` rewrites every second (drills and operators read it); worker
    process i > 0 of a cluster writes run_status.<i>.json (it holds no sink: no counts)."""
    return Path(settings.home) / ("run_status.json" if index == 0 else f"run_status.{index}.json")


def write_status(settings: Settings, state: str, footprint: dict | None = None,
                 index: int = 0) -> dict:
    data = {
        "pid": os.getpid(),
        "state": state,
        "written": time.time(),
        "buffered_rows": STATS.buffered_rows,
        "replays": STATS.replays,
        "feeds": {k: dict(v) for k, v in STATS.totals.items()},
        # how long each exchange source stopped reading (its queue full: backpressure)
        "source_paused_s": {k: v / 1e6 for k, v in metrics.counter("source_paused_us").items()},
    }
    if footprint:  # memory, fds, threads, store parts and caches (dataflows/footprint.py)
        data["footprint"] = footprint
    path = status_path(settings, index)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    return data


def run(
    settings: Settings,
    feeds: list[FeedSettings] | None = None,
    *,
    seconds: float | None = None,
    sources: list[tuple[str, Source]] | None = None,
    on_status: Callable[[], None] | None = None,
    status_every_s: float = 1.0,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    cluster: Cluster | None = None,
    worker_command: list[str] | None = None,
) -> None:
    """Apply migrations, then run the dataflow (blocks).

    `cluster`: this process's place in a several-process run (dataflows/cluster.py);
    process 0 (the store writer) starts the others with `worker_command` once the
    recovery folder is ready, passes a stop on to them and waits for them."""
    tuned = tune_malloc(settings.malloc_arena_max, settings.malloc_mmap_threshold_kb)
    # debug, not info: `run` must stay silent before its first error line (bad-config drill)
    log.debug("glibc malloc: %s", tuned or "glibc's defaults")
    index = cluster.index if cluster is not None else 0
    try:
        if index == 0:  # a worker process never opens the store
            # a start that migrated the store also converts the stored contract amounts
            # the migrations could not (`feedhouse init` always does; a start without
            # migrations leaves the store alone)
            applied, _ = init_schema(settings)
            if applied:
                with warehouse(settings) as client:
                    convert_stored(client)
    except Exception as exc:

        if error_code(exc) == ACCESS_DENIED:
            # a least-privilege ingest user may not run DDL: the schema is the admin's job
            log.warning("not allowed to apply the schema (%s): assuming it is applied",
                        first_line(exc))
        elif classify_error(exc) is ErrorClass.RETRYABLE:
            # ClickHouse down at start: run anyway, the sink buffers until it answers
            log.warning("ClickHouse unreachable at start (%s): buffering", first_line(exc))
        else:
            raise
    recovery = recovery_config(settings)  # refuses a recovery folder it cannot resume
    stop = stop or threading.Event()
    STATS.reset()  # the live status and the stop summary describe this run only
    flow = build_flow(settings, feeds, stop=stop, sources=sources, cluster=cluster)
    workers = Workers()
    previous = {}
    if handle_signals and threading.current_thread() is threading.main_thread():

        def _stop(signum, _frame) -> None:
            log.warning("%s: stopping (flushing what is held)", signal.Signals(signum).name)
            stop.set()
            workers.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    done = threading.Event()
    sampler = None
    if settings.footprint_every_s > 0 and index == 0:
        sampler = FootprintSampler(settings, settings.footprint_every_s, on_store=on_store,
                                   dedup_bytes=metrics.dedup_bytes,
                                   on_buffer=on_buffer, queued_bytes=queued_bytes).start()

    trimmer = MallocTrimmer(settings.malloc_trim_every_s).start()

    def _footprint() -> dict | None:
        return sampler.latest if sampler is not None else None

    def _watch() -> None:
        started = time.monotonic()
        while not done.wait(status_every_s):
            write_status(settings, "running", _footprint(), index)
            if on_status is not None:
                on_status()
            if seconds is not None and time.monotonic() - started >= seconds:
                stop.set()
                workers.stop()

    if settings.metrics_port is not None and index == 0:

        port = start_metrics_server(settings.metrics_port, host=settings.metrics_host)
        log.info("metrics on http://127.0.0.1:%d/metrics", port)
    watcher = threading.Thread(target=_watch, name="feedhouse-status", daemon=True)
    watcher.start()
    tune_gc()
    try:
        if cluster is None:
            run_main(flow, epoch_interval=EPOCH, recovery_config=recovery)
        else:
            if index == 0 and worker_command:
                workers.procs = Workers.spawn(worker_command, cluster).procs
            cluster_main(flow, list(cluster.addresses), index, epoch_interval=EPOCH,
                         recovery_config=recovery)
    finally:
        done.set()
        trimmer.stop()
        workers.stop()
        codes = workers.wait()
        if any(code for code in codes):
            log.warning("cluster worker exit codes: %s", codes)
        watcher.join(timeout=2)
        if sampler is not None:
            sampler.stop()
        write_status(settings, "stopped", _footprint(), index)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if on_status is not None:
            on_status()


__all__ = ["STATS", "recovery_config", "run", "status_path", "write_status"]
