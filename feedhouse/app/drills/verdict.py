"""A drill's verdict: the arithmetic over what was sent and stored, and how it is printed.

`trade_figures` is the pure arithmetic (lost / duplicates from per-venue counts);
`trade_counts_by_venue` and `measure_trades` read the store for it; `verdict` prints the
JSON verdict as the last stdout line and sets the exit code; `echo` is progress on stderr.
"""

from __future__ import annotations

import json
import sys

from feedhouse.core.settings import Settings
from feedhouse.store.candles import candle_checks
from feedhouse.store.client import warehouse
from feedhouse.store.ledger import check_ledger, ledger_totals


def echo(drill: str, text: str) -> None:
    """Progress on stderr (stdout's last line is the verdict)."""
    sys.stderr.write(f"drill {drill}: {text}\n")
    sys.stderr.flush()


def verdict(result: dict) -> None:
    """Print the drill's JSON verdict as the last stdout line; exit 1 unless ok."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    if not result.get("ok"):
        raise SystemExit(1)


def trade_figures(unique_sent: dict[str, int], stored: dict[str, int],
                  distinct: dict[str, int], rows_before_merge: dict[str, int] | None = None,
                  rejected: dict[str, int] | None = None) -> dict[str, int]:
    """lost / duplicates from per-venue counts (the verdict arithmetic, kept pure).

    found = min(distinct keys stored, unique sent) per venue: at most one stored row per
    sent trade counts. Every other stored row is a duplicate - a second row of one key
    (not merged away) or a trade stored under a second key (an unstable derived trade_id,
    a mis-normalized symbol), which shows as more distinct keys than trades sent. lost:
    sent trades neither stored nor rejected (dead-lettered by the sink). A trade stored
    ONLY under a wrong key cancels out (one lost, one extra): counts cannot see that.
    duplicates_inserted: raw rows before the merge beyond one per key (what
    ReplacingMergeTree removed), for information. ok: nothing lost, no duplicate stored."""
    rejected = rejected or {}
    before = rows_before_merge if rows_before_merge is not None else stored
    venues = set(unique_sent) | set(stored) | set(distinct)
    lost = dup_stored = dup_inserted = found_total = 0
    for v in venues:
        sent_v, keys_v = unique_sent.get(v, 0), distinct.get(v, 0)
        found = min(keys_v, sent_v)
        found_total += found
        lost += max(0, sent_v - rejected.get(v, 0) - keys_v)
        dup_stored += stored.get(v, 0) - found
        dup_inserted += before.get(v, 0) - keys_v
    return {"found": found_total, "lost": lost, "duplicates_stored": dup_stored,
            "duplicates_inserted": dup_inserted, "ok": lost == 0 and dup_stored == 0}


def trade_counts_by_venue(client, optimize: bool = True) -> dict[str, dict[str, int]]:
    """Per venue: rows and distinct keys before the merge, rows after `OPTIMIZE ... FINAL`
    (ReplacingMergeTree's last line of defence against a batch re-sent across a SIGKILL
    under a new insert token)."""
    rows = client.query("SELECT venue, count(), uniqExact(venue, symbol, trade_id) "
                        "FROM market.trades GROUP BY venue").result_rows
    if optimize:
        client.command("OPTIMIZE TABLE market.trades FINAL")
    after = dict(client.query("SELECT venue, count() FROM market.trades GROUP BY venue")
                 .result_rows)
    return {"rows_before_merge": {v: int(n) for v, n, _ in rows},
            "distinct": {v: int(d) for v, _, d in rows},
            "stored": {v: int(n) for v, n in after.items()}}


def bad_ledger_minutes(client) -> list[tuple[str, str]]:
    """(feed, minute) of every ledger minute whose invariants do not hold."""
    return [(c.feed, str(c.minute)) for c in check_ledger(client) if not c.ok]


def measure_trades(settings: Settings, sent: dict, unique_by_venue: dict[str, int],
                   optimize: bool = True, candles_before: int | None = None) -> dict:
    """What the store holds against what the session server sent (standard verdict fields).

    stored is counted after `OPTIMIZE TABLE market.trades FINAL` (what a user querying
    the table sees once ReplacingMergeTree merged; `optimize=False`: raw rows), and
    duplicates_stored is every stored row beyond one per sent unique trade (see
    trade_figures: that includes a trade stored under a second key, which the merge cannot
    remove). rows_before_merge / duplicates_inserted keep the raw figures for the record.

    `candles_before` (epoch s; the closed-minute cutoff when the run was asked to stop, so
    its last candle build covered every minute before it): the derived candles must agree
    with their source per venue, symbol and minute (trades = distinct trades, volume =
    their sum(amount)); `candles` holds the totals, and any minute that disagrees fails
    the drill (`candle_bad_minutes`)."""

    with warehouse(settings) as client:
        counts = trade_counts_by_venue(client, optimize)
        final = client.query("SELECT count() FROM market.trades FINAL").result_rows[0][0]
        dead = client.query("SELECT count() FROM ops.dead_letter").result_rows[0][0]
        bad = bad_ledger_minutes(client)
        totals = ledger_totals(client)
        candles = candle_checks(client, 0, candles_before) if candles_before else None
    figures = trade_figures(unique_by_venue, counts["stored"], counts["distinct"],
                            counts["rows_before_merge"])
    stored = sum(counts["stored"].values())
    result = {
        "sent": sent["trades_sent"],
        "unique_sent": sent["unique_trades_sent"],
        "stored": stored,
        "duplicates_stored": figures["duplicates_stored"],
        "dead_lettered": int(dead),
        "lost": figures["lost"],
        "duplicates_inserted": figures["duplicates_inserted"],
        "rows_before_merge": sum(counts["rows_before_merge"].values()),
        "final_rows": int(final),
        "ledger_ok": not bad,
        "ledger": totals,
    }
    result["ok"] = bool(
        figures["ok"] and final == stored
        and not bad and sent["unique_trades_sent"] > 0
    )
    if bad:
        result["ledger_bad_minutes"] = bad[:10]
    if candles is not None:
        wrong = [c for c in candles if not c.ok]
        result["candles"] = {
            "minutes": len(candles),
            "candle_trades": sum(c.candle_trades for c in candles),
            "distinct_trades": sum(c.distinct_trades for c in candles),
            "candle_volume": round(sum(c.candle_volume for c in candles), 6),
            "distinct_volume": round(sum(c.distinct_volume for c in candles), 6),
            "bad_minutes": len(wrong),
        }
        result["ok"] = bool(result["ok"] and not wrong and candles)
        if wrong:
            result["candle_bad_minutes"] = [
                (c.venue, c.symbol, c.minute, c.status, c.candle_trades, c.distinct_trades)
                for c in wrong[:10]]
    return result
