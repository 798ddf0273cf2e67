"""The main job on the embedded default: every part of feedhouse, end to end, in minutes.

1. the replay server serves six real recorded exchange sessions, looped and stamped with
   the time they are sent (so they look live), with duplicated frames, corrupted frames
   and a dropped connection now and then;
2. Mosquitto (when installed) takes realistic sensor readings from the load generator;
3. `feedhouse run` ingests both into a chDB store under `<home>` while a live table shows
   rows/s, duplicates, invalid and buffered rows per feed;
4. in the middle the fault injector makes ClickHouse unreachable: the buffer fills, then
   drains once ClickHouse answers again;
5. then, in this process, the row-count audit, the replay reconciliation, the quality
   suites and the audit report run, and a final table says whether everything reconciled.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from feedhouse.app.drills.common import (
    RunProcess,
    captures_folder,
    received_total,
    recorded_trade_rate,
    sent_totals,
    server_feeds,
    wait_for_status,
    wait_quiet,
    write_run_config,
)
from feedhouse.app.mqtt.broker import Broker, BrokerStats, mosquitto_binary
from feedhouse.app.mqtt.load import LoadPlan, run_load
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.config import load_settings
from feedhouse.core.errors import InputError
from feedhouse.core.settings import MqttSettings, Settings
from feedhouse.store.client import warehouse
from feedhouse.store.faults import write_faults
from feedhouse.store.ledger import check_ledger
from feedhouse.verify.audit import run_audit
from feedhouse.verify.reconcile import reconcile
from quality.report import build_report
from quality.runner import run_quality
from quality.window import Window

# sessions the replay server can loop into new trades (ids and times shifted per lap)
DEMO_CAPTURES = (
    "BINANCE_FUTURES.ws.1.0",
    "COINBASE.ws.28.0",
    "OKX.ws.1.0",
    "KRAKEN.ws.48.0",
    "BYBIT.ws.25.0",
    "BITSTAMP.ws.1.0",
)
MQTT_FEED = "plant"
MARKER = ".demo"  # a home folder the demo created and may wipe
STATE = ("clickhouse", "clickhouse.lock", "clickhouse.want", "buffer.duckdb",
         "buffer.duckdb.wal", "recovery", "run_status.json", "faults.json", "captures",
         "mosquitto", "demo.yaml", "run.log")


@dataclass
class DemoPlan:
    seconds: float = 60.0
    outage_seconds: float = 15.0
    trades_per_s: float = 400.0
    readings_per_s: float = 1000.0
    faults: str = "dup=0.02,drop=25s,corrupt=0.0005"


@dataclass
class DemoOutcome:
    ok: bool
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    report: Path | None = None
    data_docs: Path | None = None


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
        self.phase = "starting"
        self.mqtt_sent: dict = {}
        self.rates: dict[str, float] = {}
        self._last: tuple[float, dict[str, int]] | None = None

    # -- the run ---------------------------------------------------------------------

    def run(self) -> DemoOutcome:

        prepare_home(self.home)
        plan = self.plan
        speed = plan.trades_per_s / recorded_trade_rate(DEMO_CAPTURES)
        server = SessionServer(captures_folder(self.home, DEMO_CAPTURES), speed=speed,
                              loop=True, faults=plan.faults, rebase_now=True)
        server.start()
        feeds = server_feeds(server, DEMO_CAPTURES)
        broker = self._start_broker()
        if broker is not None:
            feeds.append({"name": MQTT_FEED, "kind": "mqtt",
                          "mqtt": {"host": "127.0.0.1", "port": broker.port, "clients": 2}})
        config = write_run_config(
            self.home, feeds, file_name="demo.yaml",
            reports_dir=str(self.settings.reports_dir),
            sink={"buffer_after_s": 1.0, "replay_probe_s": 0.5, "retry_max_s": 0.5},
        )
        run_settings = load_settings(config)
        fault_file = run_settings.fault_file
        ingest = RunProcess(config, self.home / "run.log")
        load = None
        try:
            ingest.start()
            self.phase = "waiting for the first commit"
            ingest.wait_running(120)
            if broker is not None:
                load = self._start_load(broker.port)
            self._live(ingest, fault_file, write_faults)
            self.phase = "draining"
            server.stop()
            if load is not None:
                load.join(timeout=plan.seconds + 120)
            sent = sent_totals(server.stats())
            self._drain(ingest, broker)
            code = ingest.stop()
        finally:
            write_faults(fault_file, outage=False)
            server.stop()
            ingest.kill()
            if broker is not None:
                broker.stop()
        if code not in (0, None):
            return DemoOutcome(False, problems=[f"feedhouse run exited {code}: see "
                                                f"{self.home / 'run.log'}"])
        return self._verify(run_settings, sent)

    def _start_broker(self):
        if not mosquitto_available():
            self.console.print("[yellow]Mosquitto is not installed: MQTT feed skipped "
                               "(make demo installs it as root)[/yellow]")
            return None

        return Broker(self.home / "mosquitto").start()

    def _start_load(self, port: int) -> threading.Thread:

        plan = LoadPlan(rate=self.plan.readings_per_s, devices=50, sensors=4,
                        seconds=self.plan.seconds, duplicates=0.02)

        def publish() -> None:
            self.mqtt_sent.update(run_load(MqttSettings(port=port), plan))

        thread = threading.Thread(target=publish, name="demo-mqtt-load", daemon=True)
        thread.start()
        return thread

    def _live(self, ingest: RunProcess, fault_file: Path, write_faults) -> None:
        plan = self.plan
        started = time.monotonic()
        down_at = started + max(0.0, (plan.seconds - plan.outage_seconds) / 2)
        up_at = down_at + plan.outage_seconds
        outage = False
        tty = self.console.is_terminal
        next_line = started
        with Live(self._view(ingest), console=self.console, refresh_per_second=2,
                  transient=False) if tty else _NoLive() as live:
            while (now := time.monotonic()) < started + plan.seconds:
                if not outage and plan.outage_seconds > 0 and down_at <= now < up_at:
                    write_faults(fault_file, outage=True)
                    outage = True
                if outage and now >= up_at:
                    write_faults(fault_file, outage=False)
                    outage = False
                left = started + plan.seconds - now
                self.phase = (f"ClickHouse UNREACHABLE (fault injector), back in "
                              f"{up_at - now:.0f}s" if outage else f"ingesting, {left:.0f}s left")
                if tty:
                    live.update(self._view(ingest))
                elif now >= next_line:
                    self._plain_line(ingest)
                    next_line = now + 5
                if not ingest.alive:
                    raise RuntimeError(f"feedhouse run stopped: see {ingest.log_path}")
                time.sleep(0.5)
            write_faults(fault_file, outage=False)

    def _drain(self, ingest: RunProcess, broker) -> None:
        """Until the run received everything (quiet), its buffer is empty and MQTT acked all."""
        wait_quiet(ingest.status_file, quiet_s=2.0, timeout_s=120)
        if broker is not None:

            BrokerStats(broker.port).wait("held", lambda n: n == 0, 120, 2.0)

    # -- the live view -----------------------------------------------------------------

    def _status(self, ingest: RunProcess) -> dict:
        return wait_for_status(ingest.status_file, lambda s: True, 1) or {}

    def _view(self, ingest: RunProcess):
        status = self._status(ingest)
        feeds = status.get("feeds", {})
        now = time.monotonic()
        totals = {name: f.get("parsed", 0) for name, f in feeds.items()}
        if self._last is not None and now > self._last[0]:
            dt = now - self._last[0]
            self.rates = {k: (v - self._last[1].get(k, 0)) / dt for k, v in totals.items()}
        self._last = (now, totals)
        table = Table(title="feedhouse demo: live ingest", expand=False)
        for column in ("feed", "records/s", "received", "records", "duplicates", "invalid",
                       "inserted", "buffered", "replayed"):
            table.add_column(column, justify="left" if column == "feed" else "right")
        for name in sorted(feeds):
            f = feeds[name]
            table.add_row(name, f"{self.rates.get(name, 0):,.0f}", f"{f['received']:,}",
                          f"{f['parsed']:,}", f"{f['duplicates']:,}", f"{f['invalid']:,}",
                          f"{f['inserted']:,}", f"{f['buffered']:,}", f"{f['replayed']:,}")
        buffered = status.get("buffered_rows", 0)
        style = "bold red" if "UNREACHABLE" in self.phase else "bold green"
        line = Text(f"{self.phase} | rows waiting in the DuckDB buffer: {buffered:,}", style=style)
        return Group(table, line)

    def _plain_line(self, ingest: RunProcess) -> None:
        status = self._status(ingest)
        self.console.print(
            f"[demo] {self.phase}: received {received_total(status):,} messages, "
            f"buffer {status.get('buffered_rows', 0):,} rows", highlight=False
        )

    # -- after the run: audit, reconcile, quality, report --------------------------------

    def _verify(self, settings: Settings, sent: dict) -> DemoOutcome:

        self.console.print("running the row-count audit, reconciliation, quality checks "
                           "and the audit report ...")
        kinds = {f.name: f.kind for f in settings.feeds}
        problems: list[str] = []
        with warehouse(settings) as client:
            newest = client.query(
                "SELECT greatest((SELECT toUnixTimestamp(max(exchange_ts)) FROM market.trades),"
                " (SELECT toUnixTimestamp(max(device_ts)) FROM iot.readings))"
            ).result_rows[0][0]
            # the run has stopped: every minute up to the newest event is closed
            audit = run_audit(client, kinds=kinds, full=True, grace_s=0,
                              now_s=max(time.time(), float(newest or 0)) + 61)
            recs = reconcile(client, kinds=kinds, settle_s=0)
            ledger_bad = [c for c in check_ledger(client) if not c.ok]
            counts = feed_counts(client)
        window = Window.last_minutes(int(self.plan.seconds // 60) + 5,
                                     now=datetime.now(UTC) + timedelta(minutes=2))
        quality = run_quality(settings, window)
        report = build_report(settings)
        audit_by_feed = {s.feed: s for s in audit.by_feed()}
        recs_by_feed: dict[str, list[str]] = {}
        for r in recs:
            recs_by_feed.setdefault(r.feed, []).append(r.status)
        # per suite: "ok", "WARN" (a warning failed) or "ERROR"
        suite_state = {
            r.suite.name: "ERROR" if r.errors else ("WARN" if r.failed else "ok")
            for r in quality.results
        }
        rows = []
        for feed, c in sorted(counts.items()):
            a = audit_by_feed.get(feed)
            audit_text = "-" if a is None else ("ok" if not a.bad_minutes else
                                                f"{len(a.bad_minutes)} bad min")
            rec = recs_by_feed.get(feed, [])
            rec_text = "-" if not rec else ("ok" if all(s == "ok" for s in rec) else "FAILED")
            suite = "iot_readings" if c["kind"] == "mqtt" else "market_trades"
            rows.append({**c, "feed": feed, "audit": audit_text, "reconciliation": rec_text,
                         "quality": suite_state.get(suite, "-")})
        exchange_unique = sent["unique_trades_sent"]
        stored_trades = sum(c["stored"] for c in counts.values() if c["kind"] == "exchange")
        if stored_trades < exchange_unique:
            problems.append(f"{exchange_unique - stored_trades} exchange trades lost")
        if self.mqtt_sent:
            stored_readings = sum(c["stored"] for c in counts.values() if c["kind"] == "mqtt")
            if stored_readings < self.mqtt_sent.get("unique", 0):
                problems.append(f"{self.mqtt_sent['unique'] - stored_readings} readings lost")
        if sum(c["duplicates_stored"] for c in counts.values()):
            problems.append("duplicates stored")
        if not audit.ok:
            problems.append(f"row-count audit: {len(audit.bad)} feed-minutes disagree")
        for r in recs:
            if not r.ok:  # say why: the explanation names the counts and minutes
                problems.append(f"replay {r.replay_id} of {r.feed} did not reconcile: "
                                f"{r.explanation}")
        if not recs and self.plan.outage_seconds > 0:
            problems.append("no buffer replay was logged for the outage")
        if ledger_bad:
            problems.append(f"ledger invariants broken in {len(ledger_bad)} feed-minutes")
        if not quality.ok:
            problems.append("an ERROR quality expectation failed")
        return DemoOutcome(not problems, rows, problems, report.path, quality.docs_index)


class _NoLive:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def feed_counts(client) -> dict[str, dict]:
    """Per feed: ledger counters and what the tables hold (distinct keys and raw rows)."""
    ledger = client.query(
        "SELECT feed, sum(received), sum(duplicates), sum(invalid), sum(buffered), "
        "sum(replayed) FROM ops.ingest_ledger GROUP BY feed"
    ).result_rows
    stored = dict(
        (feed, (rows, distinct, "exchange")) for feed, rows, distinct in client.query(
            "SELECT feed, count(), uniqExact(venue, symbol, trade_id) FROM market.trades "
            "GROUP BY feed").result_rows
    )
    stored.update(
        (feed, (rows, distinct, "mqtt")) for feed, rows, distinct in client.query(
            "SELECT feed, count(), uniqExact(device_id, sensor, device_ts, seq) "
            "FROM iot.readings GROUP BY feed").result_rows
    )
    out = {}
    for feed, received, dups, invalid, buffered, replayed in ledger:
        if feed.startswith("backfill:"):
            continue
        rows, distinct, kind = stored.get(feed, (0, 0, "mqtt" if feed == MQTT_FEED else "exchange"))
        out[feed] = {"kind": kind, "received": int(received), "stored": int(distinct),
                     "duplicates_stored": int(rows - distinct), "duplicates": int(dups),
                     "invalid": int(invalid), "buffered": int(buffered),
                     "replayed": int(replayed)}
    return out


def final_table(outcome: DemoOutcome) -> Table:
    table = Table(title="feedhouse demo: what was proven")
    columns = ("feed", "received", "stored", "duplicates", "invalid", "buffered", "replayed",
               "audit", "reconciliation", "quality")
    for column in columns:
        table.add_column(column, justify="left" if column == "feed" else "right")
    for row in outcome.rows:
        table.add_row(*(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c])
                        for c in columns))
    return table


def print_next_steps(console: Console, outcome: DemoOutcome) -> None:
    if outcome.report is not None:
        console.print(f"audit report: {outcome.report}")
    if outcome.data_docs is not None:
        console.print(f"Great Expectations Data Docs: {outcome.data_docs}")
    console.print("next:\n"
                  "  make ui                          # Dagster UI on http://127.0.0.1:3000\n"
                  "  feedhouse analytics vwap         # VWAP per venue and symbol\n"
                  "  feedhouse analytics spread_stats # best bid/ask spreads\n"
                  "  feedhouse analytics device_health\n"
                  "  feedhouse sql \"SELECT venue, count() FROM market.trades GROUP BY venue\"")


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
