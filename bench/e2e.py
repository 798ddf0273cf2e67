"""End to end: replay server at max speed on loopback -> `feedhouse run` -> rows in chDB.

Per repeat: a fresh home (chDB store, recovery, buffer), `feedhouse session-server
--speed max` serving the served corpus (bench/served.py: Binance USD-M, OKX, Coinbase
trade frames, looped with shifted ids) in its own process, and `feedhouse run --config`
(default settings: dedup on, recovery on) in another. The run's status file (rewritten
every second) gives rows committed; /proc gives the ingest process's CPU time at the same
moments. trades/s = committed rows between the first status with rows and the first
with every trade, over that wall time; CPU µs/trade = the ingest process's CPU time over
the same window / those rows. Afterwards the store must hold every trade exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import yaml

from bench.common import FEEDHOUSE, Config, Figure, measured, module_command, set_aside
from bench.served import Server, build, feeds

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def corpus_folder(cfg: Config) -> Path:
    return cfg.workdir / f"corpus-{cfg.e2e_trades}" / "captures"


def write_config(home: Path, feed_list: list[dict], **extra) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "feedhouse.yaml"
    path.write_text(yaml.safe_dump({"home": str(home), "feeds": feed_list, **extra}))
    return path


def stored_counts(config: Path) -> tuple[int, int]:
    from feedhouse.core.config import load_settings
    from feedhouse.store.client import warehouse

    with warehouse(load_settings(config)) as client:
        return client.query(
            "SELECT count(), uniqExact(venue, symbol, trade_id) FROM market.trades"
        ).result_rows[0]


def one_run(cfg: Config, served, home: Path, timeout_s: float, on_rows=None, *,
            folder: Path | None = None, feed_list=feeds, count=stored_counts,
            on_start=None) -> dict:
    """One timed run; `on_rows(pid)` is called once the first rows are committed,
    `on_start(pid)` right after the ingest process started (bench/profile.py --books).
    `folder`, `feed_list(served, port)`, `count(config)`: another corpus (bench/books_e2e.py)."""
    expected = sum(s.trades for s in served)
    set_aside(home)
    home.mkdir(parents=True)
    status = home / "run_status.json"
    with Server(folder or corpus_folder(cfg), "max") as server:
        config = write_config(home, feed_list(served, server.port))
        log = (home / "run.log").open("wb")
        proc = subprocess.Popen([FEEDHOUSE, "run", "--config", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if on_start is not None:
            on_start(proc.pid)
        # (time, rows, cpu, server cpu); the first: the process start (used only when every
        # row came within the first status period, on tiny corpora)
        samples: list[tuple[float, int, float, float]] = [
            (time.time(), 0, 0.0, cpu_s(server.proc.pid))]
        seen = 0.0
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
                try:
                    data = orjson.loads(status.read_bytes())
                except (OSError, orjson.JSONDecodeError):
                    continue
                if data["written"] == seen:
                    continue
                seen = data["written"]
                rows = sum(f.get("inserted", 0) for f in data["feeds"].values())
                samples.append((seen, rows, cpu_s(proc.pid), cpu_s(server.proc.pid)))
                if rows and on_rows is not None:
                    on_rows(proc.pid)
                    on_rows = None
                if rows >= expected:
                    break
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    stored, unique = count(config)
    if stored == unique == expected:
        set_aside(home)  # kept (with run.log) when something is off
    first = next((i for i, s in enumerate(samples) if s[1] > 0), None)
    if first is None or samples[-1][1] < expected:
        got = samples[-1][1] if samples else 0
        raise RuntimeError(f"committed {got} of {expected} trades in {timeout_s:.0f} s "
                           f"(see {home / 'run.log'})")
    if first == len(samples) - 1:  # all rows within one status period (tiny corpora)
        first -= 1
    (t0, n0, c0, s0), (t1, n1, c1, s1) = samples[first], samples[-1]
    return {
        "trades_per_s": (n1 - n0) / (t1 - t0),
        "cpu_us_per_trade": (c1 - c0) / (n1 - n0) * 1e6,
        "ingest_cpu_share": (c1 - c0) / (t1 - t0),
        "server_cpu_share": (s1 - s0) / (t1 - t0),
        "window_rows": n1 - n0,
        "window_s": t1 - t0,
        "stored": stored,
        "unique_stored": unique,
        "expected": expected,
    }


def run(cfg: Config) -> list[Figure]:
    served = build(corpus_folder(cfg), cfg.e2e_trades)
    expected = sum(s.trades for s in served)
    results = []
    for r in range(cfg.e2e_repeats):
        out = one_run(cfg, served, cfg.workdir / f"e2e{r}", timeout_s=60 + expected / 5_000)
        if not out["stored"] == out["unique_stored"] == expected:
            raise RuntimeError(f"store holds {out['stored']} rows, {out['unique_stored']} "
                               f"distinct, expected {expected}")
        results.append(out)
    settings = {
        "venues": {s.venue: {"file": s.file, "frames": s.frames, "trades": s.trades}
                   for s in served},
        "unique_trades": expected, "server": "feedhouse session-server --speed max (own process)",
        "ingest": "feedhouse run --config <home>/feedhouse.yaml (defaults: dedup, recovery on)",
        "window": "first status with rows -> first status with all rows (wall clock)",
        "ingest_cpu_share": [round(r["ingest_cpu_share"], 2) for r in results],
        "server_cpu_share": [round(r["server_cpu_share"], 2) for r in results],
        "stored_equals_unique_sent": True,
    }
    cmd = module_command("e2e", cfg)
    return rate_and_cpu(results, cmd, settings, ("e2e_trades_per_s", "trades/s", ">= 120,000"),
                        ("e2e_cpu_us_per_trade", "µs/trade", "<= 8"))


def rate_and_cpu(results: list[dict], cmd: str, settings: dict, rate: tuple[str, str, str],
                 cpu: tuple[str, str, str]) -> list[Figure]:
    """The two figures of an end-to-end run: rows per wall second and ingest CPU per row,
    each (key, unit, goal)."""
    return [
        measured(rate[0], rate[1], cmd, [round(r["trades_per_s"]) for r in results],
                 goal=rate[2], settings=settings),
        measured(cpu[0], cpu[1], cmd, [round(r["cpu_us_per_trade"], 2) for r in results],
                 goal=cpu[2], settings=settings),
    ]
