"""`feedhouse drill outage`: ClickHouse unreachable for T seconds in the middle of a run.

The replay server loops trade sessions of three venues with duplicated frames; `feedhouse
run` ingests them (a subprocess) into a fresh chDB store; the fault injector makes the
warehouse unreachable for `--outage-seconds` in the middle, so the sink buffers in DuckDB
and replays once its probe succeeds. Then the server stops, the run drains and stops,
and the store is checked:

    lost              = unique trades sent - distinct trades stored (per venue)
    duplicates_stored = rows of market.trades (not merged) beyond one per unique trade
                        sent: a second row of a key, or a trade under a second key
    ledger            = both invariants hold for every feed and minute
    reconciliation    = `feedhouse reconcile` of every finished replay (ops.reconciliation)

ok when lost == 0, duplicates_stored == 0, the ledger reconciles, (with an outage) rows
were replayed from the buffer, and every replay reconciled ok. The store is kept; its path
is printed.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from feedhouse.app.drills.options import DUP_OPTION, RATE_OPTION, STORE_OPTION, seconds_option
from feedhouse.app.drills.runner import DrillRun
from feedhouse.app.drills.verdict import (
    bad_ledger_minutes,
    trade_counts_by_venue,
    trade_figures,
    verdict,
)
from feedhouse.store.client import warehouse
from feedhouse.verify.reconcile import reconcile


def outage(
    rate: float = RATE_OPTION,
    seconds: float = seconds_option(20),
    outage_seconds: float = typer.Option(5, "--outage-seconds", min=0, help="ClickHouse down"),
    store: Path | None = STORE_OPTION,
    dup: float = DUP_OPTION,
) -> None:
    """ClickHouse unreachable mid-run: nothing lost, nothing stored twice, ledger reconciles."""

    if outage_seconds >= seconds:
        raise typer.BadParameter("--outage-seconds must be shorter than --seconds")
    with DrillRun.fresh("outage", store) as d:
        server = d.serve(rate=rate, faults=f"dup={dup}")
        settings = d.configure(
            sink={"buffer_after_s": 1.0, "replay_probe_s": 0.5, "retry_max_s": 0.5},
        )
        d.run.start()
        d.status(lambda s: bool(s.get("feeds")), 60)
        started = time.monotonic()
        down_at = started + (seconds - outage_seconds) / 2
        time.sleep(max(0.0, down_at - time.monotonic()))
        if outage_seconds > 0:
            d.echo(f"ClickHouse unreachable for {outage_seconds:g}s")
            d.faults(outage=True)
            time.sleep(outage_seconds)
            d.faults(outage=False)
            d.echo("ClickHouse back")
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        # hold, not stop: frames still in socket buffers arrive (a stop could drop them:
        # counted as sent, never received)
        server.hold()
        sent = d.sent()

        def drained(status: dict) -> bool:
            received = sum(f["received"] for f in status["feeds"].values())
            return received >= sent["frames_sent"] and status["buffered_rows"] == 0

        d.status(drained, 120)
        d.stop()
    result = {"drill": "outage",
              **_measure(settings, sent, d.unique_by_venue(), outage_seconds > 0),
              "run_exit": d.code, "store": str(d.store)}
    d.kept()
    verdict(result)


def _measure(settings, sent: dict, unique_by_venue: dict[str, int], had_outage: bool) -> dict:

    with warehouse(settings) as client:
        # raw rows, no merge: the buffer replay itself must not store anything twice
        counts = trade_counts_by_venue(client, optimize=False)
        dead = client.query("SELECT count() FROM ops.dead_letter").result_rows[0][0]
        replayed = client.query(
            "SELECT sum(rows) FROM ops.replay_log WHERE table_name IN "
            "('market.trades', 'market.quotes', 'iot.readings')"
        ).result_rows[0][0]
        bad = bad_ledger_minutes(client)
        # what `feedhouse reconcile` does (rows land in ops.reconciliation); the run has
        # exited, so its ledger is flushed: no settle time to wait out
        recs = reconcile(client, kinds={f.name: f.kind for f in settings.feeds}, settle_s=0)
        pending = client.query(
            "SELECT count() FROM (SELECT DISTINCT replay_id, feed FROM ops.replay_log "
            "WHERE status = 'finished' AND (replay_id, feed) NOT IN "
            "(SELECT replay_id, feed FROM ops.reconciliation))"
        ).result_rows[0][0]
    figures = trade_figures(unique_by_venue, counts["stored"], counts["distinct"])
    reconciliation = {"ok": sum(r.ok for r in recs), "failed": sum(not r.ok for r in recs),
                      "unreconciled": int(pending)}
    result = {
        "sent": sent["trades_sent"],
        "unique_sent": sent["unique_trades_sent"],
        "stored": sum(counts["stored"].values()),
        "duplicates_stored": figures["duplicates_stored"],
        "dead_lettered": int(dead),
        "lost": figures["lost"],
        "replayed_rows": int(replayed or 0),
        "ledger_ok": not bad,
        "reconciliation": reconciliation,
    }
    result["ok"] = bool(
        figures["ok"] and not bad and sent["unique_trades_sent"] > 0
        and (result["replayed_rows"] > 0 or not had_outage)
        and reconciliation["failed"] == reconciliation["unreconciled"] == 0
        and (reconciliation["ok"] > 0 or not had_outage)
    )
    if bad:
        result["ledger_bad_minutes"] = bad[:10]
    failed = [f"{r.replay_id} {r.feed}: {r.explanation}" for r in recs if not r.ok]
    if failed:
        result["reconciliation_failed"] = failed[:5]
    return result


def register(drill_app: typer.Typer) -> None:
    drill_app.command("outage")(outage)
