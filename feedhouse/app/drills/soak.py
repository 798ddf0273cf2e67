"""`feedhouse drill soak`: the pipeline at a steady live rate for a long time; memory,
parts and files must stay flat.

The replay server loops the demo's six exchange sessions at `--rate` trades/s (stamped
with the time they are sent, with the demo's duplicated and corrupted frames and dropped
connections), the MQTT load generator publishes `--readings-per-s` readings/s through
Mosquitto, and `feedhouse run` ingests both into a fresh chDB store. Every
`--outage-every` seconds the fault injector makes ClickHouse unreachable for
`--outage-seconds` (the sink buffers in DuckDB and replays). Every `--sample-s` seconds
the drill records the ingest's RSS (from /proc) and what the ingest itself reports in
run_status.json (dataflows/footprint.py: fds, threads, malloc and Python heap, the
store's active parts per table and cache sizes, the DuckDB buffer file, dedup keys); the
store is never opened from here while the ingest runs (chDB: one process per store).
`--tracemalloc` asks the ingest to trace Python allocations (costs CPU; off by default)
and the verdict then lists the lines that grew most.

Verdict (last stdout line): rss_slope_mb_per_h (least squares over the second half of
the samples, after warm-up), peak RSS and its composition at the peak, active parts per
table and fds at the end, and sent/stored/lost/duplicates for trades and readings, the
ledger and the buffer replays reconciled. ok when nothing was lost, no duplicate was
stored, everything reconciled and (for a run of at least `--judge-slope-after` minutes)
the slope is at most `--max-slope` and no table's active parts grow (`growing`). Samples go to soak_samples.jsonl and the chart of RSS
over time to soak_rss.svg in the drill's folder.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import typer
import yaml

from feedhouse.app.demo.scenario import DEMO_CAPTURES
from feedhouse.app.demo.verification import MQTT_FEED
from feedhouse.app.drills.options import STORE_HELP
from feedhouse.app.drills.process import wait_for_status
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.drills.served import (
    drain_held,
    sent_totals,
    unique_sent_by_venue,
)
from feedhouse.app.drills.soak_samples import SAMPLES_FILE, Sampler, rss_chart, summarize
from feedhouse.app.drills.verdict import echo, measure_trades, trade_figures, verdict
from feedhouse.app.mqtt.broker import BrokerStats
from feedhouse.app.mqtt.load import LoadPlan, run_load
from feedhouse.core.settings import MqttSettings
from feedhouse.store.client import warehouse
from feedhouse.verify.reconcile import reconcile

DEMO_FAULTS = "dup=0.02,drop=25s,corrupt=0.0005"  # as `feedhouse demo` serves
CHART_FILE = "soak_rss.svg"


def _run_overrides(pairs: list[str]) -> dict:
    """`--set sink.store_hold_s=30` -> {"sink": {"store_hold_s": 30}} (YAML values)."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set wants KEY=VALUE, not {pair!r}")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def soak(
    minutes: float = typer.Option(30.0, "--minutes", min=0.3, help="how long the load runs"),
    rate: float = typer.Option(400.0, "--rate", min=1, help="trades/s (the demo's rate)"),
    readings_per_s: float = typer.Option(1000.0, "--readings-per-s", min=0,
                                         help="MQTT readings/s (the demo's rate; 0: no MQTT)"),
    outage_every: float = typer.Option(0.0, "--outage-every", min=0,
                                       help="seconds between ClickHouse outages (0: none)"),
    outage_seconds: float = typer.Option(10.0, "--outage-seconds", min=1),
    sample_s: float = typer.Option(5.0, "--sample-s", min=0.5, help="sampling interval"),
    max_slope: float = typer.Option(20.0, "--max-slope", help="MB/hour after warm-up"),
    judge_slope_after: float = typer.Option(
        20.0, "--judge-slope-after",
        help="judge the slope only for runs of at least this many minutes (a short run is "
        "mostly warm-up)"),
    queue_mb: float | None = typer.Option(
        None, "--queue-mb", help="each exchange feed's frame queue (feeds[].queue_mb)"),
    dedup_window_s: float | None = typer.Option(
        None, "--dedup-window-s", help="every feed's dedup window (feeds[].dedup_window_s, "
        "600 s): shorter lets a short run's second half be past the window's warm-up"),
    trace: bool = typer.Option(False, "--tracemalloc",
                               help="trace Python allocations in the ingest (costs CPU)"),
    store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    overrides: list[str] = typer.Option(
        [], "--set", help="a setting of the ingest's config, e.g. sink.store_hold_s=30 "
        "(repeatable)"),
) -> None:
    """Steady live load for minutes to hours: RSS slope, peak, parts and fds, nothing lost."""


    if outage_every and outage_seconds >= outage_every:
        raise typer.BadParameter("--outage-seconds must be shorter than --outage-every")
    seconds = minutes * 60
    extra = _merge({"sink": {"buffer_after_s": 1.0, "replay_probe_s": 0.5, "retry_max_s": 0.5},
                    "footprint_every_s": min(sample_s, 10.0)}, _run_overrides(overrides))
    mqtt_sent: dict = {}
    outages: list[tuple[float, float]] = []
    sampler = load = None
    drained = False
    with DrillRun.fresh("soak", store) as d:
        home = d.home
        (home / "tracemalloc.on").unlink(missing_ok=True)
        if trace:
            (home / "tracemalloc.on").write_text("requested by feedhouse drill soak\n")
        server = d.serve(DEMO_CAPTURES, rate=rate, faults=DEMO_FAULTS, rebase_now=True)
        feed_of_path = d.feed_of_path
        if queue_mb is not None:
            for feed in d.feeds:
                feed["queue_mb"] = queue_mb
        broker = d.start_broker() if readings_per_s > 0 else None
        if broker is not None:
            d.feeds.append({"name": MQTT_FEED, "kind": "mqtt",
                            "mqtt": {"host": "127.0.0.1", "port": broker.port, "clients": 2}})
        if dedup_window_s is not None:
            for feed in d.feeds:
                feed["dedup_window_s"] = dedup_window_s
        settings = d.configure(**extra)
        ingest = d.run
        sampler = Sampler(ingest, home / SAMPLES_FILE, sample_s)
        try:
            ingest.start()
            ingest.wait_running(120)
            sampler.start()
            if broker is not None:
                plan = LoadPlan(rate=readings_per_s, devices=50, sensors=4, seconds=seconds,
                                duplicates=0.02)

                def publish() -> None:
                    mqtt_sent.update(run_load(MqttSettings(port=broker.port), plan))

                load = threading.Thread(target=publish, name="soak-mqtt-load", daemon=True)
                load.start()
            started = sampler.started
            next_outage = started + outage_every if outage_every else None
            next_note = started + 60
            while (now := time.monotonic()) < started + seconds:
                if not ingest.alive:
                    raise RuntimeError(f"feedhouse run stopped: see {ingest.log_path}")
                if next_outage is not None and now >= next_outage \
                        and now + outage_seconds < started + seconds:
                    echo("soak", f"ClickHouse unreachable for {outage_seconds:g}s")
                    d.faults(outage=True)
                    sampler.outage = True
                    time.sleep(outage_seconds)
                    d.faults(outage=False)
                    sampler.outage = False
                    outages.append((now - started, time.monotonic() - started))
                    next_outage = now + outage_every
                if now >= next_note:
                    last = sampler.samples[-1] if sampler.samples else {}
                    echo("soak", f"{(now - started) / 60:.0f}/{minutes:g} min: RSS "
                         f"{last.get('rss_mb')} MB, threads {last.get('threads')}, fds "
                         f"{last.get('fds')}, parts {last.get('parts')}")
                    next_note += 60
                time.sleep(min(1.0, max(0.05, started + seconds - now)))
            d.faults(outage=False)
            # the footprint under steady load only: draining (no new load) would bend the slope
            sampler.stop()
            server.calm()  # no more dropped connections: the drain must not chase reconnects
            echo("soak", "load done: draining")
            if load is not None:
                load.join(timeout=300)
            drained = drain_held(server, ingest.status_file, feed_of_path, timeout_s=300)
            sent = sent_totals(server.stats())
            wait_for_status(ingest.status_file, lambda s: s.get("buffered_rows", 1) == 0, 120)
            if broker is not None:
                drained = BrokerStats(broker.port).wait_drained(120) and drained
            code = d.stop()
        finally:
            sampler.stop()
    summary = summarize(sampler.samples)
    by_venue = unique_sent_by_venue(server)
    result = {"drill": "soak", "minutes": minutes, "trades_per_s": rate,
              "readings_per_s": readings_per_s, "outages": len(outages),
              **_verify(settings, sent, by_venue, mqtt_sent, had_outage=bool(outages)),
              **summary, "drained": drained, "run_exit": code,
              "run_tracebacks": ingest.tracebacks(), "store": str(d.store)}
    top = next((s["tracemalloc_top"] for s in reversed(sampler.samples)
                if s.get("tracemalloc_top")), None)
    if top:
        result["tracemalloc_top"] = top[:8]
    judged = minutes >= judge_slope_after
    slope = summary.get("rss_slope_mb_per_h")
    result["slope_judged"] = judged
    result["slope_ok"] = (slope is not None and slope <= max_slope) if judged else None
    result["ok"] = bool(result["ok"] and code == 0 and drained
                        and result["run_tracebacks"] == 0
                        and (not judged or (result["slope_ok"] and not summary["parts_growing"])))
    chart = home / CHART_FILE
    if sampler.samples:
        chart.write_text(rss_chart(
            sampler.samples, outages,
            f"feedhouse run RSS over {minutes:g} min at {rate:g} trades/s + "
            f"{readings_per_s:g} readings/s (slope after warm-up: {slope} MB/h)"))
        result["chart"] = str(chart)
    echo("soak", f"samples {home / SAMPLES_FILE}, chart {chart}, run log {ingest.log_path}")
    verdict(result)


def _verify(settings, sent: dict, by_venue: dict[str, int], mqtt_sent: dict,
            had_outage: bool) -> dict:
    """Trades (common.measure_trades), readings, and every buffer replay reconciled."""
    result = measure_trades(settings, sent, by_venue)
    readings: dict = {}
    with warehouse(settings) as client:
        if mqtt_sent:
            before = client.query("SELECT count() FROM iot.readings").result_rows[0][0]
            client.command("OPTIMIZE TABLE iot.readings FINAL")
            stored, unique = client.query(
                "SELECT count(), uniqExact(device_id, sensor, seq) FROM iot.readings"
            ).result_rows[0]
            fig = trade_figures({MQTT_FEED: mqtt_sent.get("unique_readings", 0)},
                                {MQTT_FEED: int(stored)}, {MQTT_FEED: int(unique)})
            readings = {"readings_sent": mqtt_sent.get("readings", 0),
                        "readings_unique_sent": mqtt_sent.get("unique_readings", 0),
                        "readings_stored": int(stored), "readings_rows_before_merge": int(before),
                        "readings_lost": fig["lost"],
                        "readings_duplicates_stored": fig["duplicates_stored"],
                        "readings_ok": fig["ok"] and mqtt_sent.get("unique_readings", 0) > 0}
        recs = reconcile(client, kinds={f.name: f.kind for f in settings.feeds}, settle_s=0)
        replayed = client.query(
            "SELECT sum(rows) FROM ops.replay_log WHERE table_name IN "
            "('market.trades', 'iot.readings')").result_rows[0][0]
    reconciliation = {"ok": sum(r.ok for r in recs), "failed": sum(not r.ok for r in recs)}
    trades_ok = result.pop("ok")
    out = {**result, **readings, "replayed_rows": int(replayed or 0),
           "reconciliation": reconciliation}
    out["ok"] = bool(
        trades_ok and readings.get("readings_ok", True) and reconciliation["failed"] == 0
        and (not had_outage or (reconciliation["ok"] > 0 and out["replayed_rows"] > 0))
    )
    if reconciliation["failed"]:
        out["reconciliation_failed"] = [f"{r.replay_id} {r.feed}: {r.explanation}"
                                        for r in recs if not r.ok][:5]
    return out


def register(drill_app: typer.Typer) -> None:
    drill_app.command("soak")(soak)


