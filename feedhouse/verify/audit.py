"""Row-count audit: the ledger's count of stored rows against the rows really in the tables.

For every feed and closed event-time minute the ledger says `sum(inserted)` rows reached
ClickHouse (direct inserts and buffer replays alike, see feedhouse/ledger.py). The table
side is the number of distinct row keys (feedhouse/tables.py) with that feed in that
minute, summed over the record tables the feed writes (trades and quotes for exchange
feeds, readings for MQTT feeds — as found in the data). Each audited minute becomes one
row of ops.row_count_audit: status `ok`, `missing` (table < ledger) or `extra`.

The candles (market.ohlcv_1m, feedhouse/candles.py) are proven the same way: per venue,
symbol and closed minute, `trades` in the candle against the distinct trades in
market.trades (ledger_count = distinct trades, table_count = the candle's trades) and its
volume against their sum(amount); a row with feed `venue/symbol` and table_name
market.ohlcv_1m, status ok, missing, extra or `volume`. The audit first builds the
candles that are due (closed or changed since the last build), like `feedhouse run` does.

Which minutes: every closed minute (older than `grace_s`) not yet audited, every minute
whose last audit was not `ok` (a late ledger flush heals, a real loss stays visible),
and every minute a finished buffer replay covered after the minute's last audit.
Plain functions on a clickhouse-connect client: the CLI and Dagster share them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feedhouse.core.tables import RECORD_TABLES, default_table, table_label
from feedhouse.store.candles import CANDLES_TABLE, DEFAULT_LATENESS_S, CandleBuilder, candle_checks
from feedhouse.store.ledger import LEDGER_TABLE

AUDIT_TABLE = "ops.row_count_audit"
AUDIT_COLUMNS = [
    "audited_ts", "feed", "table_name", "minute",
    "ledger_count", "table_count", "difference", "status",
]
DEFAULT_GRACE_S = 120.0  # ledger flush + allowed lateness: a minute this old is closed
RECENT_S = 15 * 60  # also look this far back for table rows no ledger row explains
DAY = 86_400

Key = tuple[str, int]  # (feed, minute as epoch seconds)


@dataclass(frozen=True)
class MinuteAudit:
    feed: str
    table_name: str
    minute: datetime
    ledger_count: int
    table_count: int

    @property
    def difference(self) -> int:
        return self.table_count - self.ledger_count

    @property
    def status(self) -> str:
        return "ok" if self.difference == 0 else ("missing" if self.difference < 0 else "extra")

    def row(self, audited_ts: datetime) -> list[Any]:
        return [
            audited_ts, self.feed, self.table_name, self.minute,
            self.ledger_count, self.table_count, self.difference, self.status,
        ]


@dataclass(frozen=True)
class CandleAudit(MinuteAudit):
    """One candle against the distinct trades of its minute: ledger_count = distinct
    trades, table_count = the candle's `trades`; volumes compared too."""

    candle_volume: float = 0.0
    distinct_volume: float = 0.0
    volume_ok: bool = True

    @property
    def status(self) -> str:
        status = super().status
        return "volume" if status == "ok" and not self.volume_ok else status


def candle_feed(venue: str, symbol: str) -> str:
    """The `feed` label of a candle's audit rows."""
    return f"{venue}/{symbol}"


@dataclass
class FeedSummary:
    feed: str
    table_name: str
    minutes: int = 0
    ok: int = 0
    missing: int = 0
    extra: int = 0
    ledger_rows: int = 0
    table_rows: int = 0
    bad_minutes: list[datetime] = field(default_factory=list)


@dataclass
class AuditResult:
    audited_ts: datetime
    cutoff: datetime  # minutes starting before this were closed
    minutes: list[MinuteAudit]

    @property
    def bad(self) -> list[MinuteAudit]:
        return [m for m in self.minutes if m.status != "ok"]

    @property
    def ok(self) -> bool:
        return not self.bad

    def by_feed(self) -> list[FeedSummary]:
        out: dict[str, FeedSummary] = {}
        for m in self.minutes:
            s = out.setdefault(m.feed, FeedSummary(m.feed, m.table_name))
            s.minutes += 1
            status = "extra" if m.status == "volume" else m.status  # a candle's wrong volume
            setattr(s, status, getattr(s, status) + 1)
            s.ledger_rows += m.ledger_count
            s.table_rows += m.table_count
            if m.status != "ok":
                s.bad_minutes.append(m.minute)
        return [out[k] for k in sorted(out)]


def _dt(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def closed_cutoff(now_s: float, grace_s: float = DEFAULT_GRACE_S) -> int:
    """Start (epoch s) of the first minute not yet closed."""
    return int((now_s - grace_s) // 60) * 60


# --- reading both sides -----------------------------------------------------------------


def ledger_counts(client, lo: int, hi: int, feed: str | None = None) -> dict[Key, int]:
    """{(feed, minute): sum(inserted)} for minutes in [lo, hi)."""
    cond = " AND feed = {feed:String}" if feed else ""
    rows = client.query(
        f"SELECT feed, toUInt32(minute), sum(inserted) FROM {LEDGER_TABLE} "
        "WHERE minute >= toDateTime({lo:UInt32}, 'UTC') AND minute < toDateTime({hi:UInt32}, 'UTC')"
        f"{cond} GROUP BY feed, minute",
        parameters={"lo": lo, "hi": hi, "feed": feed or ""},
    ).result_rows
    return {(f, int(m)): int(n) for f, m, n in rows}


def table_counts(client, lo: int, hi: int, feed: str | None = None) -> dict[Key, dict[str, int]]:
    """{(feed, minute): {table: distinct keys}} for event-time minutes in [lo, hi)."""
    out: dict[Key, dict[str, int]] = defaultdict(dict)
    cond = " AND feed = {feed:String}" if feed else ""
    for spec in RECORD_TABLES:
        ts = spec.event_ts
        rows = client.query(
            f"SELECT feed, toUInt32(toStartOfMinute({ts})) AS m, uniqExact({spec.key_sql}) "
            f"FROM {spec.name} WHERE {ts} >= toDateTime64({{lo:UInt32}}, 6, 'UTC') "
            f"AND {ts} < toDateTime64({{hi:UInt32}}, 6, 'UTC'){cond} GROUP BY feed, m",
            parameters={"lo": lo, "hi": hi, "feed": feed or ""},
        ).result_rows
        for f, m, n in rows:
            out[(f, int(m))][spec.name] = int(n)
    return out


def audit_states(client, lo: int, hi: int) -> dict[Key, tuple[str, str]]:
    """{(feed, minute): (last status, last table_name)} for minutes in [lo, hi)."""
    rows = client.query(
        f"SELECT feed, toUInt32(minute), argMax(status, audited_ts), argMax(table_name, audited_ts) "
        f"FROM {AUDIT_TABLE} WHERE minute >= toDateTime({{lo:UInt32}}, 'UTC') "
        "AND minute < toDateTime({hi:UInt32}, 'UTC') GROUP BY feed, minute",
        parameters={"lo": lo, "hi": hi},
    ).result_rows
    return {(f, int(m)): (s, t) for f, m, s, t in rows}


def _reopening_replays(client) -> list[tuple[str, int, int, int]]:
    """Finished replays that may have changed minutes after their last audit:
    (feed, first minute, last minute, finished µs)."""
    last_audit = client.query(
        f"SELECT toUnixTimestamp64Micro(max(audited_ts)), count() FROM {AUDIT_TABLE}"
    ).result_rows[0]
    since_us = int(last_audit[0]) - 600_000_000 if last_audit[1] else 0
    rows = client.query(
        "SELECT feed, toUInt32(toStartOfMinute(first_event_ts)), "
        "toUInt32(toStartOfMinute(last_event_ts)), toUnixTimestamp64Micro(finished_ts) "
        "FROM ops.replay_log WHERE status = 'finished' "
        "AND toUnixTimestamp64Micro(finished_ts) > {since:Int64}",
        parameters={"since": since_us},
    ).result_rows
    return [(f, int(a), int(b), int(t)) for f, a, b, t in rows]


def candidate_minutes(client, cutoff: int, *, full: bool = False, since: int = 0) -> set[Key]:
    """Ledger minutes to audit now: never audited, last audit not ok, or re-opened by a
    replay that finished after their last audit (all of them when `full`); only minutes
    from `since` (epoch s) on."""
    params: dict[str, Any] = {"cutoff": cutoff, "since": since}
    reopened = []
    if not full:
        for i, (feed, lo, hi, fin) in enumerate(_reopening_replays(client)):
            params.update({f"f{i}": feed, f"lo{i}": lo, f"hi{i}": hi, f"t{i}": fin})
            reopened.append(
                f"(l.feed = {{f{i}:String}} AND toUInt32(l.minute) BETWEEN {{lo{i}:UInt32}} "
                f"AND {{hi{i}:UInt32}} AND toUnixTimestamp64Micro(a.audited) < {{t{i}:Int64}})"
            )
    where = "1" if full else " OR ".join(["a.status != 'ok'", *reopened])
    rows = client.query(
        "SELECT l.feed, toUInt32(l.minute) FROM "
        f"(SELECT feed, minute FROM {LEDGER_TABLE} "
        " WHERE minute < toDateTime({cutoff:UInt32}, 'UTC') "
        " AND minute >= toDateTime({since:UInt32}, 'UTC') GROUP BY feed, minute) AS l "
        "LEFT JOIN (SELECT feed, minute, argMax(status, audited_ts) AS status, "
        f" max(audited_ts) AS audited FROM {AUDIT_TABLE} GROUP BY feed, minute) AS a "
        f"ON l.feed = a.feed AND l.minute = a.minute WHERE {where}",
        parameters=params,
    ).result_rows
    return {(f, int(m)) for f, m in rows}


def spans(minutes: Iterable[int]) -> list[tuple[int, int]]:
    """Per UTC day holding a minute: [first minute, last minute + 60) — the event-time ranges
    to scan (tables are partitioned by day, so each span prunes to one partition)."""
    per_day: dict[int, list[int]] = {}
    for m in minutes:
        lo_hi = per_day.setdefault(m // DAY, [m, m])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], m), max(lo_hi[1], m)
    return [(lo, hi + 60) for _, (lo, hi) in sorted(per_day.items())]


# --- comparing ---------------------------------------------------------------------------


def compare(
    ledger: dict[Key, int],
    tables: dict[Key, dict[str, int]],
    keys: Iterable[Key],
    table_hint: dict[str, str],
) -> list[MinuteAudit]:
    """One MinuteAudit per key; the table label comes from the data, else from the hint."""
    seen: dict[str, set[str]] = defaultdict(set)
    for (feed, _), per_table in tables.items():
        seen[feed].update(per_table)
    out = []
    for feed, minute in sorted(keys):
        per_table = tables.get((feed, minute), {})
        label = table_label(seen[feed]) if seen[feed] else table_hint.get(feed)
        out.append(
            MinuteAudit(
                feed=feed,
                table_name=label or default_table(feed).name,
                minute=_dt(minute),
                ledger_count=ledger.get((feed, minute), 0),
                table_count=sum(per_table.values()),
            )
        )
    return out


def bad_candle_minutes(client, cutoff: int) -> list[int]:
    """Minutes (epoch s, before cutoff) of candles whose latest audit is not ok."""
    rows = client.query(
        "SELECT DISTINCT toUInt32(minute) FROM (SELECT feed, minute, "
        f"argMax(status, audited_ts) AS status FROM {AUDIT_TABLE} "
        "WHERE table_name = {table:String} AND minute < toDateTime({cutoff:UInt32}, 'UTC') "
        "GROUP BY feed, minute) WHERE status != 'ok'",
        parameters={"table": CANDLES_TABLE, "cutoff": cutoff},
    ).result_rows
    return [int(m) for (m,) in rows]


def audit_candles(
    client, ranges: list[tuple[int, int]], states: dict[Key, tuple[str, str]], full: bool
) -> list[CandleAudit]:
    """Candle audits over the event-time ranges: those never audited ok, not ok now, or
    all of them (`full`)."""
    out = []
    for lo, hi in ranges:
        for c in candle_checks(client, lo, hi):
            feed = candle_feed(c.venue, c.symbol)
            if not (full or not c.ok or states.get((feed, c.minute), ("", ""))[0] != "ok"):
                continue
            out.append(CandleAudit(
                feed=feed, table_name=CANDLES_TABLE, minute=_dt(c.minute),
                ledger_count=c.distinct_trades, table_count=c.candle_trades,
                candle_volume=c.candle_volume, distinct_volume=c.distinct_volume,
                volume_ok=c.status != "volume",
            ))
    return out


def audit_range(
    client, feed: str, lo: int, hi: int, kinds: dict[str, str] | None = None
) -> list[MinuteAudit]:
    """Compare one feed over [lo, hi) without writing anything (used by reconciliation)."""
    ledger = ledger_counts(client, lo, hi, feed)
    tables = table_counts(client, lo, hi, feed)
    hint = {feed: default_table(feed, kinds).name}
    return compare(ledger, tables, set(ledger) | set(tables), hint)


def run_audit(
    client,
    *,
    now_s: float | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    full: bool = False,
    since_s: float | None = None,
    kinds: dict[str, str] | None = None,
    write: bool = True,
    candles: bool = True,
) -> AuditResult:
    """Audit the minutes due now and (when `write`) append them to ops.row_count_audit.

    `kinds`: {feed: 'exchange'|'mqtt'} from settings, used only for a feed that has no rows
    in any table yet. `full`: re-audit every closed minute of the ledger (from `since_s`
    on, when given) — catches rows lost after a minute was audited ok. `candles`: also
    build the due candles (when `write`) and prove them.
    """
    now_s = time.time() if now_s is None else now_s
    cutoff = closed_cutoff(now_s, grace_s)
    audited_ts = datetime.fromtimestamp(now_s, UTC)
    if candles and write:
        # the minute audit schedule builds what `feedhouse run` may not have built yet
        # (it was stopped, or a replay/backfill wrote old minutes)
        CandleBuilder(lateness_s=min(DEFAULT_LATENESS_S, grace_s)).build_due(client, now_s)
    wanted = candidate_minutes(client, cutoff, full=full, since=int(since_s or 0))
    recent = range(max(cutoff - RECENT_S, 0), cutoff, 60)
    again = bad_candle_minutes(client, cutoff) if candles else []
    ledger: dict[Key, int] = {}
    tables: dict[Key, dict[str, int]] = {}
    states: dict[Key, tuple[str, str]] = {}
    ranges = []
    for lo, hi in spans([m for _, m in wanted] + list(recent) + again):
        hi = min(hi, cutoff)
        ranges.append((lo, hi))
        ledger.update(ledger_counts(client, lo, hi))
        tables.update(table_counts(client, lo, hi))
        states.update(audit_states(client, lo, hi))
    # Table rows no ledger row explains surface as `extra` (unless already audited ok).
    unexplained = {
        k for k in tables if k not in ledger and (full or states.get(k, ("", ""))[0] != "ok")
    }
    hint = {feed: t for (feed, _), (_, t) in states.items()}
    for feed, kind in (kinds or {}).items():
        hint.setdefault(feed, default_table(feed, {feed: kind}).name)
    minutes = compare(ledger, tables, wanted | unexplained, hint)
    if candles:
        minutes += audit_candles(client, ranges, states, full)
    if write and minutes:
        client.insert(
            AUDIT_TABLE, [m.row(audited_ts) for m in minutes], column_names=AUDIT_COLUMNS
        )
    return AuditResult(audited_ts=audited_ts, cutoff=_dt(cutoff), minutes=minutes)


# --- current state (for asset checks and reports) -----------------------------------------


@dataclass(frozen=True)
class OpenMismatch:
    feed: str
    table_name: str
    minute: datetime
    ledger_count: int
    table_count: int
    status: str


def open_mismatches(client, table: str | None = None, limit: int = 20) -> tuple[int, list[OpenMismatch]]:
    """Minutes whose latest audit is not ok (optionally only those of one table):
    (how many, the first `limit` of them by minute)."""
    cond = "WHERE has(splitByChar('+', table_name), {table:String})" if table else ""
    rows = client.query(
        "SELECT feed, table_name, minute, ledger_count, table_count, status, count() OVER () "
        f"FROM (SELECT feed, minute, argMax(table_name, audited_ts) AS table_name, "
        " argMax(ledger_count, audited_ts) AS ledger_count, "
        " argMax(table_count, audited_ts) AS table_count, argMax(status, audited_ts) AS status "
        f" FROM {AUDIT_TABLE} GROUP BY feed, minute) {cond} "
        f"{'AND' if cond else 'WHERE'} status != 'ok' ORDER BY minute, feed LIMIT {int(limit)}",
        parameters={"table": table or ""},
    ).result_rows
    total = int(rows[0][6]) if rows else 0
    return total, [OpenMismatch(f, t, m, int(lc), int(tc), s) for f, t, m, lc, tc, s, _ in rows]
