"""Shared pieces of the benchmarks: corpora, repeats, figures, the machine they ran on.

A benchmark module exposes `run(cfg: Config) -> list[Figure]`. A figure carries its value
(the median over repeats), the spread (min/max of the repeats), the exact command and
settings that produced it, and either a goal check or `unavailable: <why>` - a figure
that could not be measured says so instead of showing a number.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from feedhouse.app.sessions import REST_DIR, SESSIONS_DIR

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = SESSIONS_DIR
REST = REST_DIR
# captures built from the venues' documented examples (for venues without a recording)
VENUE_DOCS = ROOT / "tests" / "fixtures" / "venue_docs"
PYTHON = sys.executable
FEEDHOUSE = str(Path(PYTHON).with_name("feedhouse"))

def capture_path(name: str) -> Path:
    """A capture by name: `docs/X` is built from documented examples, others recorded."""
    if name.startswith("docs/"):
        return VENUE_DOCS / name.removeprefix("docs/")
    return CAPTURES / name


# The trade-bearing captures of the venues the fast path and cryptofeed both cover.
NORMALIZE_CAPTURES = {
    "binance": "BINANCE.ws.1.0",
    "binance_futures": "BINANCE_FUTURES.ws.1.0",
    "okx": "OKX.ws.1.0",
    "coinbase": "COINBASE.ws.28.0",
    "bybit": "BYBIT.ws.25.0",
    "kraken": "KRAKEN.ws.48.0",
    "bitstamp": "BITSTAMP.ws.1.0",
    "gemini": "GEMINI.ws.1.0",
    "gateio": "GATEIO.ws.1.0",
    "bitmex": "BITMEX.ws.1.0",
    "bitget": "BITGET.ws.1.0",
    "bitfinex": "docs/BITFINEX_TRADES.ws.docs",
    "deribit": "docs/DERIBIT_TRADES.ws.docs",
    "huobi": "docs/HUOBI_TRADES.ws.docs",
}


@dataclass
class Config:
    """Sizes of one run: `full` for `make bench`, `tiny` for the smoke test."""

    name: str = "full"
    repeats: int = 5
    normalize_s: float = 1.0  # CPU seconds per repeat, per venue and side
    normalize_trades: int = 50_000  # trade frames per venue corpus (looped laps)
    e2e_trades: int = 600_000  # unique trades per e2e repeat (3 venues)
    e2e_repeats: int = 3
    book_levels: int = 1_000_000  # level updates per books_e2e repeat (4 venues)
    naive_trades: int = 200_000
    latency_rate: int = 10_000  # trades/s offered (bench.flush and older callers)
    latency_rates: dict = field(default_factory=lambda: {"2k": 2_000, "10k": 10_000})
    latency_s: float = 20.0
    warmup_s: float = 5.0  # latency: rows acked this long after the run started are left out
    mqtt_s: float = 60.0
    mqtt_rate: int = 50_000  # readings/s offered by the load generator
    mqtt_repeats: int = 2  # sustained runs (each mqtt_s plus its drain)
    mqtt_batch: int = 10  # readings per message of the batched-telemetry figure
    # ramps (readings/s offered per step, mqtt_step_s each; the highest bounded one is then
    # held for mqtt_s), the rate of the CPU and latency figures, the naive comparison's
    mqtt_steps: tuple[int, ...] = (5_000, 10_000, 20_000, 30_000, 40_000, 50_000)
    mqtt_batched_steps: tuple[int, ...] = (20_000, 50_000, 100_000, 150_000)
    mqtt_step_s: float = 10.0
    mqtt_cpu_rate: int = 10_000
    mqtt_naive_s: float = 15.0
    dedup_keys: int = 1_000_000
    replay_rows: int = 1_000_000
    backfill_rows: int = 1_000_000  # trades of the generated Binance day
    backfill_repeats: int = 3
    workdir: Path = field(default_factory=lambda: ROOT / ".feedhouse" / "bench")
    only: tuple[str, ...] = ()

    @classmethod
    def tiny(cls, workdir: Path) -> Config:
        return cls(
            name="tiny", repeats=2, normalize_s=0.05, normalize_trades=500, e2e_trades=20_000,
            book_levels=60_000,
            e2e_repeats=1, naive_trades=2_000, latency_rate=500,
            latency_rates={"2k": 200, "10k": 500}, latency_s=1.0, warmup_s=1.0, mqtt_s=2.0,
            mqtt_rate=500, mqtt_repeats=1, dedup_keys=20_000, replay_rows=5_000, workdir=workdir,
            mqtt_steps=(500,), mqtt_batched_steps=(1_000,), mqtt_step_s=2.0, mqtt_cpu_rate=500,
            mqtt_naive_s=2.0, backfill_rows=20_000, backfill_repeats=1,
        )


@dataclass
class Figure:
    key: str  # key in latest.json, e.g. "normalize_trades_per_s.binance"
    value: float | None  # the median; None when unavailable
    unit: str
    command: str  # how to reproduce it
    settings: dict = field(default_factory=dict)
    repeats: list[float] = field(default_factory=list)
    goal: str = ""  # e.g. ">= 4"
    unavailable: str = ""  # why there is no number
    note: str = ""

    @property
    def spread(self) -> tuple[float, float] | None:
        return (min(self.repeats), max(self.repeats)) if self.repeats else None

    @property
    def met(self) -> bool | None:
        if self.value is None or not self.goal:
            return None
        op, target = self.goal.split()
        target_value = float(target.replace(",", ""))
        return self.value >= target_value if op == ">=" else self.value <= target_value

    def as_dict(self) -> dict:
        data = asdict(self)
        data["median"] = self.value
        data["min"], data["max"] = self.spread or (None, None)
        data["goal_met"] = self.met
        return data


def measured(key: str, unit: str, command: str, repeats: list[float], **kw) -> Figure:
    return Figure(key, statistics.median(repeats), unit, command, repeats=repeats, **kw)


def unavailable(key: str, unit: str, command: str, why: str, **kw) -> Figure:
    return Figure(key, None, unit, command, unavailable=why, **kw)


def module_command(module: str, cfg: Config) -> str:
    return f"python -m bench --only {module}" + (" --tiny" if cfg.name == "tiny" else "")


def machine() -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", ""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count(),
        "commit": commit + ("+dirty" if dirty else ""),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cpu_timed(fn: Callable[[], int], seconds: float) -> float:
    """Call fn (returns items done) until `seconds` of this process's CPU time passed;
    items per CPU second. CPU time, not wall clock: the machine is shared."""
    done = 0
    start = time.process_time()
    while True:
        done += fn()
        elapsed = time.process_time() - start
        if elapsed >= seconds:
            return done / elapsed


def corpus(capture: str, min_trades: int, *, trades_only: bool) -> list[tuple[int, str | bytes]]:
    """A recorded session looped (ids, times and prices shifted per lap, as the replay
    server does) until it holds `min_trades` trades: [(received_ts µs, frame)]."""
    from feedhouse.app.session_server.stream import RecordedStream

    stream = RecordedStream.load(capture_path(capture))
    venue = stream.venue
    base = 1_700_000_000_000_000
    out: list[tuple[int, str | bytes]] = []
    trades = 0
    g = 0
    laps_without_trades = 0
    while trades < min_trades:
        i = g % len(stream)
        if i == 0 and g:
            laps_without_trades = laps_without_trades + 1 if trades == 0 else 0
            if laps_without_trades > 1:
                raise ValueError(f"{capture}: no trades in the capture")
        n = len(stream.keys[i])
        if n or not trades_only:
            out.append((base + int(stream.time_of(g) * 1e6), stream.frame(g)))
        trades += n
        g += 1
    assert venue is not None
    return out


def shell(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


# Stores set aside during a bench run (set_aside), deleted once every figure is measured.
_TRASH: list[Path] = []


def set_aside(path: Path) -> None:
    """Move a bench store (a run's home or work folder) out of the way instead of deleting
    it; `empty_trash` deletes it when the bench ends. Why: on a filesystem without a
    journal (the bench machine's ext4) creating a file scans past every inode freed in the
    last 60-300 s, so deleting a store of ~50,000 files right before a measured run made
    each of that run's inserts cost ~34 ms of CPU instead of ~5.5 (docs/performance.md)."""
    if not path.exists():
        return
    trash = path.parent / ".trash"
    trash.mkdir(exist_ok=True)
    target = trash / f"{path.name}-{uuid.uuid4().hex[:8]}"
    path.rename(target)
    _TRASH.append(target)


def empty_trash() -> None:
    """Delete the stores `set_aside` moved (after the last measurement)."""
    while _TRASH:
        shutil.rmtree(_TRASH.pop(), ignore_errors=True)
