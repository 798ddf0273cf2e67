"""The main job on the embedded default: every part of feedhouse, end to end, in minutes.

1. the session server serves six real recorded exchange sessions, looped and stamped
   with the time they are sent (so they look live), with duplicated frames, corrupted
   frames and a dropped connection now and then;
2. Mosquitto (when installed) takes realistic sensor readings from the load generator;
3. `feedhouse run` ingests both into a chDB store under `<home>` while a live table shows
   rows/s, duplicates, invalid and buffered rows per feed (live_view.py);
4. in the middle the fault injector makes ClickHouse unreachable: the buffer fills, then
   drains once ClickHouse answers again;
5. then the row-count audit, the replay reconciliation, the quality suites and the audit
   report run as Dagster runs of the instance under `<home>/dagster_home` (the one
   `make ui` opens; orchestration.verify_runs), and a final table says whether everything
   reconciled (verification.py);
6. it leaves a sample archive (a day of Binance USD-M futures dumps made from a recorded
   session) under `<home>/archive` and points `archive_dir` at it, so the backfill
   partition `2024-01-15|binance_futures` can be materialized from the UI.

The setup and teardown (server, broker, config, ingest process) is the drills' runner,
`feedhouse.app.drills.runner.DrillRun`, working in the demo's home.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from feedhouse.app.demo.live_view import LiveView, final_table, print_next_steps
from feedhouse.app.demo.sample_archive import SAMPLE_DIR, write_sample_archive
from feedhouse.app.demo.verification import DEMO_BOOKS, MQTT_FEED, DemoOutcome, verify
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.mqtt.broker import Broker, BrokerStats, mosquitto_binary
from feedhouse.app.mqtt.load import LoadPlan, run_load
from feedhouse.core.errors import InputError
from feedhouse.core.settings import MqttSettings, Settings
from feedhouse.store.lock import claim_store

# sessions the session server can loop into new trades (ids and times shifted per lap)
DEMO_CAPTURES = (
    "BINANCE_FUTURES.ws.1.0",
    "COINBASE.ws.28.0",
    "OKX.ws.1.0",
    "KRAKEN.ws.48.0",
    "BYBIT.ws.25.0",
    "BITSTAMP.ws.1.0",
)
MARKER = ".demo"  # a home folder the demo created and may wipe
STATE = ("clickhouse", "clickhouse.lock", "clickhouse.want", "buffer.duckdb",
         "buffer.duckdb.wal", "recovery", "run_status.json", "faults.json", "captures",
         "mosquitto", "demo.yaml", "run.log", SAMPLE_DIR)


@dataclass
class DemoPlan:
    seconds: float = 60.0
    outage_seconds: float = 15.0
    trades_per_s: float = 400.0
    readings_per_s: float = 1000.0
    faults: str = "dup=0.02,drop=25s,corrupt=0.0005"


def prepare_home(home: Path) -> None:
    """Start from a clean demo store; never wipe a store the demo did not create."""
    home.mkdir(parents=True, exist_ok=True)
    marker = home / MARKER
    if (home / "clickhouse").exists() and not marker.exists():
        raise InputError(
            f"{home} holds a store the demo did not create; set FEEDHOUSE_HOME to another "
            "folder to run the demo"
        )
    for name in STATE:
        path = home / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    marker.write_text("created by `feedhouse demo`; the demo wipes this folder's store\n")


def mosquitto_available() -> bool:

    try:
        mosquitto_binary()
    except Exception:
        return False
    return True


class Demo:
    def __init__(self, settings: Settings, plan: DemoPlan, console: Console) -> None:
        self.settings, self.plan, self.console = settings, plan, console
        self.home = settings.home
        self.view = LiveView(console)
        self.mqtt_sent: dict = {}

    def run(self) -> DemoOutcome:

        claim_store(self.home / "clickhouse", "feedhouse demo")  # before wiping anything
        prepare_home(self.home)
        plan = self.plan
        with DrillRun("demo", self.home) as d:
            d.serve(DEMO_CAPTURES, rate=plan.trades_per_s, faults=plan.faults,
                    rebase_now=True, books=DEMO_BOOKS)
            broker = self._start_broker(d)
            if broker is not None:
                d.feeds.append({"name": MQTT_FEED, "kind": "mqtt",
                                "mqtt": {"host": "127.0.0.1", "port": broker.port,
                                         "clients": 2}})
            run_settings = d.configure(
                file_name="demo.yaml", reports_dir=str(self.settings.reports_dir),
                archive_dir=str(write_sample_archive(self.home)),
                sink={"buffer_after_s": 1.0, "replay_probe_s": 0.5, "retry_max_s": 0.5},
            )
            load = None
            d.run.start()
            self.view.phase = "waiting for the first commit"
            d.run.wait_running(120)
            if broker is not None:
                load = self._start_load(broker.port)
            self._live(d)
            self.view.phase = "draining"
            # hold, not stop: nothing new is sent but connections stay open, so frames still
            # in socket buffers arrive (a stop could drop them: counted sent, never received)
            d.server.hold()
            if load is not None:
                load.join(timeout=plan.seconds + 120)
            # until the run received every frame sent (book feeds can leave it behind: a
            # server stopped meanwhile would drop frames it counted as sent)
            d.drain_held(timeout_s=180)
            sent = d.sent()
            # until the run received everything (quiet), its buffer is empty and MQTT acked all
            d.drain(quiet_s=2.0, timeout_s=120)
            if broker is not None:
                BrokerStats(broker.port).wait("held", lambda n: n == 0, 120, 2.0)
            code = d.stop()
        if code not in (0, None):
            return DemoOutcome(False, problems=[f"feedhouse run exited {code}: see "
                                                f"{self.home / 'run.log'}"])
        return verify(d.config, run_settings, plan.seconds, plan.outage_seconds, sent, self.mqtt_sent,
                      self.console)

    def _start_broker(self, d: DrillRun) -> Broker | None:
        if not mosquitto_available():
            self.console.print("[yellow]Mosquitto is not installed: MQTT feed skipped "
                               "(make demo installs it as root)[/yellow]")
            return None
        return d.start_broker()

    def _start_load(self, port: int) -> threading.Thread:

        plan = LoadPlan(rate=self.plan.readings_per_s, devices=50, sensors=4,
                        seconds=self.plan.seconds, duplicates=0.02)

        def publish() -> None:
            self.mqtt_sent.update(run_load(MqttSettings(port=port), plan))

        thread = threading.Thread(target=publish, name="demo-mqtt-load", daemon=True)
        thread.start()
        return thread

    def _live(self, d: DrillRun) -> None:
        """Show the run for plan.seconds, ClickHouse unreachable for outage_seconds mid-way."""
        plan, view, ingest = self.plan, self.view, d.run
        started = time.monotonic()
        down_at = started + max(0.0, (plan.seconds - plan.outage_seconds) / 2)
        up_at = down_at + plan.outage_seconds
        outage = False
        next_line = started
        with view.live(ingest) as live:
            while (now := time.monotonic()) < started + plan.seconds:
                if not outage and plan.outage_seconds > 0 and down_at <= now < up_at:
                    d.faults(outage=True)
                    outage = True
                if outage and now >= up_at:
                    d.faults(outage=False)
                    outage = False
                left = started + plan.seconds - now
                view.phase = (f"ClickHouse UNREACHABLE (fault injector), back in "
                              f"{up_at - now:.0f}s" if outage else f"ingesting, {left:.0f}s left")
                if view.tty:
                    live.update(view.render(ingest))
                elif now >= next_line:
                    view.plain_line(ingest)
                    next_line = now + 5
                if not ingest.alive:
                    raise RuntimeError(f"feedhouse run stopped: see {ingest.log_path}")
                time.sleep(0.5)
            d.faults(outage=False)


def run_demo(settings: Settings, plan: DemoPlan, console: Console | None = None) -> int:
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 132)  # the final table, readable in a log
    demo = Demo(settings, plan, console)
    outcome = demo.run()
    console.print(final_table(outcome))
    print_next_steps(console, outcome)
    if outcome.ok:
        console.print("[bold green]everything reconciled[/bold green]")
        return 0
    for problem in outcome.problems:
        console.print(f"[bold red]not reconciled:[/bold red] {problem}")
    sys.stdout.flush()
    return 1
