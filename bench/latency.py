"""Tick-to-row latency at a paced rate: receive -> insert acknowledged, and per hop.

The served corpus (bench/served.py) goes out of `feedhouse session-server --speed X` in its
own process, X chosen so the three feeds together offer `latency_rate` trades/s. The
ingest dataflow runs in this process (`dataflows.runner.run`, default settings) with
three timestamps taken around its stages, by wrapping them (no change to their code):

    received_ts (the source stamps each frame) -> parsed (after parse_batch returns)
    -> dedup (after dedup_parsed returns) -> insert acked (the sink's ack, `_observe`)

Per row: receive->parsed, parsed->dedup, dedup->insert acked and the total. Rows acked
during the first `warmup_s` + 3 s are left out (schema, connections, first epoch).
"""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np

from bench.common import Config, Figure, measured, module_command
from bench.e2e import corpus_folder
from bench.served import Server, build, feeds

STARTUP_S = 3.0  # schema, imports and connections before the first epoch
HOPS = ("receive_to_parsed", "parsed_to_dedup", "dedup_to_insert_acked", "total")


class Probe:
    """Wraps the three stages; collects per-row hop latencies in µs."""

    def __init__(self) -> None:
        self.parsed: dict[tuple[str, str], int] = {}
        self.deduped: dict[tuple[str, str], int] = {}
        self.rows: list[tuple[int, int, int, int]] = []
        self.collect_after = float("inf")
        self._undo: list = []

    def install(self) -> None:
        import dataflows.dedup.stage as dedup_step
        import dataflows.flow as flow
        from dataflows.sink.stage import FeedSinkPartition

        parse_batch, dedup_parsed = flow.parse_batch, dedup_step.dedup_parsed
        observe = FeedSinkPartition._observe

        def timed_parse(batch, parse_one=None):
            out = parse_batch(batch, parse_one)
            now = time.time_ns() // 1000
            self.parsed.update(((t[1], t[3]), now) for t in out.trades)
            return out

        def timed_dedup(window, parsed, *args, **kw):
            out = dedup_parsed(window, parsed, *args, **kw)
            now = time.time_ns() // 1000
            self.deduped.update(((t[1], t[3]), now) for t in out.trades)
            return out

        def timed_observe(sink, table, rows):
            observe(sink, table, rows)
            ack = time.time_ns() // 1000
            if table != "market.trades":
                return
            collect = time.monotonic() >= self.collect_after
            for r in rows:
                key = (r[1], r[3])
                p = self.parsed.pop(key, None)
                d = self.deduped.pop(key, None)
                if collect and p is not None and d is not None:
                    self.rows.append((r[8], p, d, ack))

        flow.parse_batch, dedup_step.dedup_parsed = timed_parse, timed_dedup
        FeedSinkPartition._observe = timed_observe
        self._undo = [(flow, "parse_batch", parse_batch),
                      (dedup_step, "dedup_parsed", dedup_parsed),
                      (FeedSinkPartition, "_observe", observe)]

    def uninstall(self) -> None:
        for owner, name, value in self._undo:
            setattr(owner, name, value)

    def hops_ms(self) -> dict[str, np.ndarray]:
        a = np.asarray(self.rows, dtype=np.int64).reshape(-1, 4)
        return {
            "receive_to_parsed": (a[:, 1] - a[:, 0]) / 1000,
            "parsed_to_dedup": (a[:, 2] - a[:, 1]) / 1000,
            "dedup_to_insert_acked": (a[:, 3] - a[:, 2]) / 1000,
            "total": (a[:, 3] - a[:, 0]) / 1000,
        }


def one_run(cfg: Config, served, home, speed: float) -> tuple[dict, int, float]:
    from dataflows.runner import run as run_flow
    from feedhouse.core.config import load_settings

    shutil.rmtree(home, ignore_errors=True)
    probe = Probe()
    probe.install()
    try:
        with Server(corpus_folder(cfg), f"{speed:.6g}") as server:
            settings = load_settings(home=str(home), feeds=feeds(served, server.port))
            stop = threading.Event()

            def control() -> None:
                time.sleep(cfg.latency_s + cfg.warmup_s + STARTUP_S)
                stop.set()

            probe.collect_after = time.monotonic() + cfg.warmup_s + STARTUP_S
            started = time.monotonic()
            threading.Thread(target=control, daemon=True).start()
            run_flow(settings, stop=stop, handle_signals=False)
            elapsed = time.monotonic() - started
    finally:
        probe.uninstall()
    shutil.rmtree(home, ignore_errors=True)
    if not probe.rows:
        raise RuntimeError("no rows acknowledged after the warm-up")
    window = max(elapsed - (cfg.warmup_s + STARTUP_S), 1e-6)
    return probe.hops_ms(), len(probe.rows), len(probe.rows) / window


def run(cfg: Config) -> list[Figure]:
    needed = int(cfg.latency_rate * (cfg.latency_s + cfg.warmup_s + STARTUP_S + 10))
    served = build(corpus_folder(cfg), max(cfg.e2e_trades, needed))
    recorded_rate = sum(s.trades / s.seconds for s in served)
    speed = cfg.latency_rate / recorded_rate
    runs = [one_run(cfg, served, cfg.workdir / f"latency{r}", speed)
            for r in range(min(cfg.repeats, 2))]
    cmd = module_command("latency", cfg)
    settings = {"offered_trades_per_s": cfg.latency_rate, "replay_speed": round(speed, 3),
                "seconds_measured": cfg.latency_s, "warmup_s": cfg.warmup_s + STARTUP_S,
                "rows_measured": [n for _, n, _ in runs],
                "acked_rows_per_s": [round(r) for _, _, r in runs],
                "clock": "wall, time.time_ns (same host)"}
    figures = []
    for q in (50, 95, 99):
        figures.append(measured(
            f"tick_to_row_ms.p{q}", "ms", cmd,
            [round(float(np.percentile(h["total"], q)), 2) for h, _, _ in runs],
            goal="<= 50" if q == 99 else "", settings=settings))
    for hop in HOPS[:-1]:
        for q in (50, 95, 99):
            figures.append(measured(
                f"tick_to_row_ms.{hop}_p{q}", "ms", cmd,
                [round(float(np.percentile(h[hop], q)), 2) for h, _, _ in runs],
                settings=settings))
    return figures
