"""Tick-to-row latency at paced rates: receive -> insert acknowledged, and per hop.

Keys `tick_to_row_2k_ms` and `tick_to_row_10k_ms` (Config.latency_rates: 2,000 and
10,000 trades/s offered; smaller on --tiny): p50/p95/p99 of the total and of each hop,
and beside them the CPU of the session server standing in for the exchanges
(`.server_cpu_share`, cores) and of the ingest process per trade acked
(`.ingest_cpu_us_per_trade`): the server shares the 2 cores with the pipeline.
The served corpus (bench/served.py) goes out of `feedhouse session-server --speed X` in its
own process, X chosen so the three feeds together offer the rate. The
ingest dataflow runs in this process (`dataflows.runner.run`, default settings) with
three timestamps taken around its stages, by wrapping them (no change to their code):

    received_ts (the source stamps each frame) -> parsed (after parse_batch returns)
    -> dedup (after dedup_parsed returns) -> insert acked (the sink's ack, `_observe`)

Per row: receive->parsed, parsed->dedup, dedup->insert acked and the total. Rows acked
before the first row stored + `warmup_s` are left out (schema, connections, first epoch).
"""

from __future__ import annotations

import resource
import threading
import time

import numpy as np

from bench.common import Config, Figure, measured, module_command, set_aside
from bench.e2e import corpus_folder, cpu_s
from bench.served import Server, build, feeds
from dataflows.runner import run as run_flow
from feedhouse.core.config import load_settings

STARTUP_S = 3.0  # schema, imports and connections before the first epoch
HOPS = ("receive_to_parsed", "parsed_to_dedup", "dedup_to_insert_acked", "total")


class Probe:
    """Wraps the three stages; collects per-row hop latencies in µs."""

    def __init__(self) -> None:
        self.parsed: dict[tuple[str, str], int] = {}
        self.deduped: dict[tuple[str, str], int] = {}
        self.rows: list[tuple[int, int, int, int]] = []
        self.collect_after = float("inf")
        self.first_ack = threading.Event()  # the pipeline is up: rows reach the store
        self._undo: list = []

    def install(self) -> None:
        import dataflows.dedup.stage as dedup_step
        import dataflows.flow as flow
        from dataflows.sink.stage import FeedSinkPartition

        parse_batch, dedup_parsed = flow.parse_batch, dedup_step.dedup_parsed
        observe = FeedSinkPartition._observe

        def timed_parse(*args, **kw):
            out = parse_batch(*args, **kw)
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
            self.first_ack.set()
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


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def one_run(cfg: Config, served, home, speed: float) -> tuple[dict, int, float, dict]:

    set_aside(home)
    marks: dict = {}
    probe = Probe()
    probe.install()
    try:
        with Server(corpus_folder(cfg), f"{speed:.6g}") as server:
            settings = load_settings(home=str(home), feeds=feeds(served, server.port))
            stop = threading.Event()

            def control() -> None:
                # the warm-up counts from the first row stored (start-up time varies with
                # the machine's load), then the measured window
                probe.first_ack.wait(60 + STARTUP_S)
                time.sleep(cfg.warmup_s)
                probe.collect_after = time.monotonic()
                marks["a"] = (time.monotonic(), _cpu_self(), cpu_s(server.proc.pid),
                              len(probe.rows))
                time.sleep(cfg.latency_s)
                marks["b"] = (time.monotonic(), _cpu_self(), cpu_s(server.proc.pid),
                              len(probe.rows))
                stop.set()

            threading.Thread(target=control, daemon=True).start()
            run_flow(settings, stop=stop, handle_signals=False)
    finally:
        probe.uninstall()
    set_aside(home)
    if not probe.rows:
        raise RuntimeError("no rows acknowledged after the warm-up")
    (t0, c0, s0, n0), (t1, c1, s1, n1) = marks["a"], marks["b"]
    window = max(t1 - t0, 1e-6)
    cpu = {"server_cpu_share": (s1 - s0) / (t1 - t0),
           "ingest_cpu_us_per_trade": (c1 - c0) / max(n1 - n0, 1) * 1e6}
    return probe.hops_ms(), len(probe.rows), len(probe.rows) / window, cpu


def run(cfg: Config) -> list[Figure]:
    figures = []
    for name, rate in cfg.latency_rates.items():
        figures += paced_figures(cfg, f"tick_to_row_{name}_ms", rate)
    return figures


def paced_corpus(cfg: Config, rate: int) -> tuple[list, float]:
    """The served corpus, long enough for a paced run at `rate` trades/s, and the replay
    speed at which its feeds together offer that rate."""
    needed = int(rate * (cfg.latency_s + cfg.warmup_s + STARTUP_S + 10))
    served = build(corpus_folder(cfg), max(cfg.e2e_trades, needed))
    return served, rate / sum(s.trades / s.seconds for s in served)


def paced_figures(cfg: Config, key: str, rate: int) -> list[Figure]:
    served, speed = paced_corpus(cfg, rate)
    runs = [one_run(cfg, served, cfg.workdir / f"latency{r}", speed)
            for r in range(min(cfg.repeats, 2))]
    cmd = module_command("latency", cfg)
    settings = {"offered_trades_per_s": rate, "replay_speed": round(speed, 3),
                "seconds_measured": cfg.latency_s, "warmup_s_after_first_row": cfg.warmup_s,
                "rows_measured": [n for _, n, _, _ in runs],
                "acked_rows_per_s": [round(r) for _, _, r, _ in runs],
                "server_cpu_share": [round(c["server_cpu_share"], 3) for *_, c in runs],
                "clock": "wall, time.time_ns (same host)"}
    goal = {"tick_to_row_2k_ms": "<= 50", "tick_to_row_10k_ms": "<= 100"}.get(key, "")
    figures = []
    for q in (50, 95, 99):
        figures.append(measured(
            f"{key}.p{q}", "ms", cmd,
            [round(float(np.percentile(h["total"], q)), 2) for h, _, _, _ in runs],
            goal=goal if q == 99 else "", settings=settings))
    for hop in HOPS[:-1]:
        for q in (50, 95, 99):
            figures.append(measured(
                f"{key}.{hop}_p{q}", "ms", cmd,
                [round(float(np.percentile(h[hop], q)), 2) for h, _, _, _ in runs],
                settings=settings))
    figures.append(measured(f"{key}.server_cpu_share", "cores", cmd,
                            [round(c["server_cpu_share"], 3) for *_, c in runs],
                            settings=settings, note="the session server (replay-server)"))
    figures.append(measured(f"{key}.ingest_cpu_us_per_trade", "µs/trade", cmd,
                            [round(c["ingest_cpu_us_per_trade"], 2) for *_, c in runs],
                            settings=settings, note="this process (the dataflow), per row acked"))
    return figures
