"""One runner for every drill, the demo and the tests: `DrillRun`.

A drill is a working folder (`home`, inside a fresh chDB store), the recorded-session
server serving sessions (and/or Mosquitto), a run config pointing the pipeline at them,
`feedhouse run` as a subprocess (peak RSS sampled), faults switched while it runs, a
drain, and a verdict comparing what the server sent with what the store holds.
`DrillRun` owns all of that; a drill module keeps only its own steps and verdict fields:

    with DrillRun.fresh("crash", store) as d:   # home STORE/drill (store new or empty)
        d.serve(rate=rate, faults="dup=0.02")    # session server on DRILL_CAPTURES; d.feeds
        d.configure(sink={...})                  # drill.yaml -> d.config, d.settings, d.run
        d.run.start().wait_running()             # d.run: RunProcess (start/kill/stop/alive)
        d.faults(outage=True)                    # the fault injector (d.settings.fault_file)
        d.status(lambda s: ..., timeout_s=30)    # poll the run's status file
        d.finish()                               # server off, run drained, SIGTERM: d.code
    result = {"drill": "crash", **d.measure(),   # trades sent vs stored (verdict.py)
              "run_exit": d.code, "peak_rss_mb": d.peak_rss_mb, "store": str(d.store)}
    d.kept()                                     # "store kept at ..." on stderr
    verdict(result)                              # JSON last stdout line; exit 1 unless ok

Leaving the `with` block, normally or by an exception, SIGKILLs a run still alive, stops
the server and the broker and switches the faults off. The server's counters stay
readable afterwards: `d.sent()`, `d.unique_by_venue()`, `d.measure()`.

Variations: `DrillRun(name, home)` works in a given folder without a store of its own
(the demo: no DSN is written, the settings' default store applies); `d.serve(names,
folder=..., loop=False)` serves prepared captures; `d.start_broker()` starts Mosquitto
in `home/mosquitto`; `d.use_config(path)` runs a config the caller wrote (the MQTT
drill); `d.drain_held()` holds the server until the run received every frame sent.

Building blocks, usable alone: `process.py` (RunProcess, status polling), `served.py`
(sessions, feeds, server counters), `verdict.py` (verdict arithmetic and printing),
`options.py` (the shared `--store/--rate/--dup/--seconds` options).

Adding to a drill: a new check of the store reads it after the `with` block through
`warehouse(d.settings)` and adds its fields to the result before `ok` is computed; a new
drill is a module with `register(drill_app)` whose body is the block above with its own
steps (the old `drills/common.py` names live on: see process/served/verdict).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from feedhouse.app.drills.process import RunProcess, wait_quiet
from feedhouse.app.drills.served import (
    DRILL_CAPTURES,
    captures_folder,
    drain_held,
    feed_of_path,
    recorded_trade_rate,
    sent_totals,
    server_feeds,
    unique_sent_by_venue,
)
from feedhouse.app.drills.verdict import echo, measure_trades
from feedhouse.app.mqtt.broker import Broker
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.config import load_settings
from feedhouse.core.errors import InputError
from feedhouse.core.settings import Settings
from feedhouse.store.candles import closed_cutoff
from feedhouse.store.faults import write_faults
from feedhouse.store.lock import claim_store


def drill_home(store: Path | None, name: str) -> Path:
    """The drill's working folder (config, captures, buffer, recovery, logs): `drill/` in
    `store`, which is the chDB store itself, so `FEEDHOUSE_WAREHOUSE_DSN=chdb:///STORE`
    opens what the drill left (default: a fresh temporary folder, kept for inspection)."""
    root = (store or Path(tempfile.mkdtemp(prefix=f"feedhouse-drill-{name}-"))).resolve()
    claim_store(root, f"feedhouse drill {name}")  # two drills on one --store: one line
    if root.exists() and any(root.iterdir()):
        raise InputError(f"--store {root} is not empty: the drill needs a fresh store")
    home = root / "drill"
    home.mkdir(parents=True, exist_ok=True)
    return home


def store_of(home: Path) -> Path:
    """The chDB store of the drill working in `home` (see drill_home)."""
    return home.parent


def write_run_config(
    home: Path, feeds: list[dict], file_name: str = "drill.yaml", **extra
) -> Path:
    """A feedhouse.yaml for a pipeline subprocess: state in `home`, fault file beside
    (written with every fault off)."""
    fault_file = home / "faults.json"
    write_faults(fault_file, outage=False)
    data = {"home": str(home), "fault_file": str(fault_file), "feeds": feeds, **extra}
    config = home / file_name
    config.write_text(yaml.safe_dump(data))
    return config


class DrillRun:
    """A drill's setup and teardown: home, session server, broker, config, ingest process
    (see the module docstring for the life cycle)."""

    def __init__(self, name: str, home: Path, store: Path | None = None,
                 log_name: str = "run.log") -> None:
        self.name, self.home, self.store = name, home, store
        self.log_path = home / log_name
        self.server: SessionServer | None = None
        self.broker: Broker | None = None
        self.feeds: list[dict] = []
        self.config: Path | None = None
        self.settings: Settings | None = None
        self.run: RunProcess | None = None
        self.code: int | None = None  # the run's exit code, once stopped
        self.candles_before: int | None = None  # closed-minute cutoff at finish()

    @classmethod
    def fresh(cls, name: str, store: Path | None) -> DrillRun:
        """A drill in a new store (`--store`, or a temporary folder): home is STORE/drill."""
        home = drill_home(store, name)
        run = cls(name, home, store_of(home))
        run.echo(f"store {run.store}")
        return run

    def __enter__(self) -> DrillRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- setup -------------------------------------------------------------------------

    def serve(self, names=DRILL_CAPTURES, *, rate: float = 0.0, folder: Path | None = None,
              loop: bool = True, faults: str | None = None, books: bool = False,
              **server_kw) -> SessionServer:
        """Start the session server on `names` (linked into home/captures, or the prepared
        `folder`) at `rate` trades/s summed (0: as fast as the run reads); sets d.feeds
        (`books`: with the books channel where a session holds book frames)."""
        speed = rate / recorded_trade_rate(names) if rate > 0 else None
        folder = folder or captures_folder(self.home, names)
        self.server = SessionServer(folder, speed=speed, loop=loop, faults=faults, **server_kw)
        self.server.start()
        self.feeds = server_feeds(self.server, names, books=books)
        return self.server

    def start_broker(self) -> Broker:
        """Mosquitto (shipped config, free loopback port) with its data in home/mosquitto."""
        self.broker = Broker(self.home / "mosquitto").start()
        return self.broker

    def configure(self, feeds: list[dict] | None = None, *, file_name: str = "drill.yaml",
                  **extra) -> Settings:
        """Write the run config (d.feeds unless `feeds`; `extra` settings such as sink=...)
        into home, pointing at the drill's store when it has one; the settings it loads."""
        if self.store is not None:
            extra = {"warehouse_dsn": f"chdb://{self.store}", **extra}
        feeds = self.feeds if feeds is None else feeds
        return self.use_config(write_run_config(self.home, feeds, file_name, **extra))

    def use_config(self, config: Path) -> Settings:
        """Run `config` (d.settings, and d.run, not started yet)."""
        self.config = config
        self.settings = load_settings(config)
        self.run = RunProcess(config, self.log_path,
                              status_file=Path(self.settings.home) / "run_status.json")
        return self.settings

    @property
    def feed_of_path(self) -> dict[str, str]:
        """Session-server path -> feed name."""
        return feed_of_path(self.feeds)

    # -- while it runs -----------------------------------------------------------------

    def faults(self, **faults) -> None:
        """Switch the fault injector (outage=True, latency_ms=..., row_latency_us=...)."""
        write_faults(self.settings.fault_file, **faults)

    def status(self, done: Callable[[dict], bool] = lambda s: True,
               timeout_s: float = 5) -> dict:
        """The run's status once done(status), or the last one read after timeout_s."""
        return self.run.status(done, timeout_s)

    def drain_held(self, timeout_s: float = 180) -> bool:
        """Hold the server until the run received every frame sent (served.drain_held)."""
        return drain_held(self.server, self.run.status_file, self.feed_of_path, timeout_s)

    def drain(self, quiet_s: float = 2.0, timeout_s: float = 120) -> dict:
        """Stop the server, then until the run's received count stood still for quiet_s
        and its buffer is empty; its last status."""
        self.server.stop()
        return wait_quiet(self.run.status_file, quiet_s, timeout_s)

    def stop(self, timeout_s: float = 120) -> int | None:
        """SIGTERM the run; its exit code (None when it had to be killed) in d.code."""
        self.code = self.run.stop(timeout_s)
        return self.code

    def finish(self) -> int | None:
        """drain() then stop(): the usual end of a drill. The closed-minute cutoff at the
        stop is kept: the run's last candle build covers every minute before it."""
        self.drain()
        self.candles_before = closed_cutoff(time.time())
        return self.stop()

    def close(self) -> None:
        """SIGKILL a run still alive, stop server and broker, switch the faults off."""
        if self.run is not None:
            self.run.kill()
        if self.server is not None:
            self.server.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.settings is not None and self.settings.fault_file is not None:
            write_faults(self.settings.fault_file, outage=False)

    # -- the verdict -------------------------------------------------------------------

    def sent(self) -> dict[str, int]:
        """Frames/trades the server sent, summed over its paths."""
        return sent_totals(self.server.stats())

    def unique_by_venue(self) -> dict[str, int]:
        return unique_sent_by_venue(self.server)

    def measure(self, optimize: bool = True, candles: bool = False) -> dict:
        """The standard trade verdict fields (verdict.measure_trades) of this drill;
        `candles`: also the derived candles against their trades (drills that can insert
        a batch twice: after finish())."""
        return measure_trades(self.settings, self.sent(), self.unique_by_venue(), optimize,
                              candles_before=self.candles_before if candles else None)

    @property
    def peak_rss_mb(self) -> float:
        """Peak RSS of the ingest over all its starts, MiB (one decimal)."""
        return round(self.run.peak_rss_mb, 1)

    def echo(self, text: str) -> None:
        """Progress on stderr as `drill NAME: text`."""
        echo(self.name, text)

    def kept(self) -> None:
        self.echo(f"store kept at {self.store} (run log: {self.log_path})")
