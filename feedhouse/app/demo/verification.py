"""After the demo's run: the row-count audit, the replay reconciliation, the quality
suites and the audit report as Dagster runs, plus the ledger invariants, folded into one
`DemoOutcome`
(a row per feed for the final table, and the problems that make the demo fail)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from feedhouse.app.demo.books_check import prove_books
from feedhouse.core.settings import Settings
from feedhouse.store.client import warehouse
from feedhouse.store.ledger import check_ledger
from orchestration.verify_runs import verify_with_dagster

MQTT_FEED = "plant"
# Order books in the demo (issue 21): the sessions with book frames subscribe `books`, and
# books_check.py proves them after the run (False: trades, quotes and readings only)
DEMO_BOOKS = True
BOOK_VENUES = 4  # venues whose recorded sessions the demo serves with book frames


@dataclass
class DemoOutcome:
    ok: bool
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    report: Path | None = None
    data_docs: Path | None = None


def verify(config: Path, settings: Settings, seconds: float, outage_seconds: float,
           sent: dict, mqtt_sent: dict, console: Console) -> DemoOutcome:
    """Prove the demo's store through Dagster runs of the instance `make ui` opens (audit,
    reconciliation of every replay, quality checks, report: orchestration.verify_runs).
    `sent` is the session server's totals, `mqtt_sent` the load generator's ({} without
    MQTT); the demo ran `seconds` with an outage of `outage_seconds`."""

    console.print("running the row-count audit, reconciliation, quality checks "
                  "and the audit report as Dagster runs ...")
    problems: list[str] = []
    runs = verify_with_dagster(config, window_minutes=int(seconds // 60) + 5)
    console.print(runs.summary(), highlight=False)
    with warehouse(settings) as client:
        ledger_bad = [c for c in check_ledger(client) if not c.ok]
        counts = feed_counts(client)
        books = prove_books(client) if DEMO_BOOKS else None
    if books is not None:
        console.print(books.line(), highlight=False)
    recs_by_feed: dict[str, list[str]] = {}
    for r in runs.reconciliations:
        recs_by_feed.setdefault(r["feed"], []).append(r["status"])
    rows = []
    for feed, c in sorted(counts.items()):
        bad = runs.audit_feeds.get(feed)
        audit_text = "-" if bad is None else ("ok" if not bad else f"{bad} bad min")
        rec = recs_by_feed.get(feed, [])
        rec_text = "-" if not rec else ("ok" if all(s == "ok" for s in rec) else "FAILED")
        suite = "iot_readings" if c["kind"] == "mqtt" else "market_trades"
        rows.append({**c, "feed": feed, "audit": audit_text, "reconciliation": rec_text,
                     "quality": runs.suite_state.get(suite, "-")})
    exchange_unique = sent["unique_trades_sent"]
    stored_trades = sum(c["stored"] for c in counts.values() if c["kind"] == "exchange")
    if stored_trades < exchange_unique:
        problems.append(f"{exchange_unique - stored_trades} exchange trades lost")
    if mqtt_sent:
        stored_readings = sum(c["stored"] for c in counts.values() if c["kind"] == "mqtt")
        if stored_readings < mqtt_sent.get("unique", 0):
            problems.append(f"{mqtt_sent['unique'] - stored_readings} readings lost")
    if sum(c["duplicates_stored"] for c in counts.values()):
        problems.append("duplicates stored")
    if not runs.audit_ran:
        problems.append("the row-count audit did not run")
    elif runs.audit_mismatched:
        problems.append(f"row-count audit: {runs.audit_mismatched} feed-minutes disagree")
    for r in runs.reconciliations:
        if r["status"] != "ok":  # say why: the explanation names the counts and minutes
            problems.append(f"replay {r['replay_id']} of {r['feed']} did not reconcile: "
                            f"{r['explanation']}")
    if not runs.reconciliations and outage_seconds > 0:
        problems.append("no buffer replay was logged for the outage")
    if books is not None:
        problems += books.problems(BOOK_VENUES)
    if ledger_bad:
        problems.append(f"ledger invariants broken in {len(ledger_bad)} feed-minutes")
    if not runs.quality_ok:
        problems.append("an ERROR quality expectation failed")
    problems += [f"Dagster {line}" for line in runs.failed_runs
                 if "reconcile_replays" not in line]  # a failed replay is named above
    return DemoOutcome(not problems, rows, problems, runs.report, runs.data_docs)


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
