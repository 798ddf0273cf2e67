"""Reconcile each finished buffer replay: buffered rows = replayed rows = new rows in the table.

A replay (ops.replay_log, one row per feed x table, sharing a replay_id) is reconciled once:

* buffer vs replay: the rows the buffer held for its batches equal the rows it inserted;
* replay vs table: the keys of that feed and event-time range whose FIRST appearance in the
  table (min inserted_ts) falls inside the replay's [started, finished] window — i.e. new
  rows net of duplicates — are at least the rows replayed (more only when the live path
  stored rows of the same range meanwhile: the explanation says how many);
* table vs ledger: for every minute of the range, the row-count audit equation holds
  (ledger inserted = distinct keys), which names the minutes that disagree.

The outcome is one row of ops.reconciliation (status ok/failed, an explanation, the bad
minutes). Plain functions on a clickhouse-connect client: CLI and Dagster share them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feedhouse.core.errors import InputError
from feedhouse.core.records import datetime_from_us
from feedhouse.core.tables import COUNTABLE_TABLES, RECORD_TABLES
from feedhouse.store.ledger import LEDGER_TABLE
from feedhouse.verify.audit import audit_range

RECON_TABLE = "ops.reconciliation"
RECON_COLUMNS = [
    "replay_id", "feed", "checked_ts", "range_start", "range_end", "buffered_rows",
    "replayed_rows", "table_rows", "status", "explanation", "bad_minutes",
]
SETTLE_S = 30.0  # let the ledger flush the replay's counters before judging it
CLOCK_SLACK_US = 1_000_000  # inserted_ts (server clock) vs the replay's own timestamps
_RECORD_NAMES = {t.name for t in RECORD_TABLES}


@dataclass(frozen=True)
class ReplayRow:
    replay_id: str
    feed: str
    table_name: str
    batches: int
    rows: int
    buffered_rows: int
    first_us: int
    last_us: int
    started_us: int
    finished_us: int


@dataclass
class Reconciliation:
    replay_id: str
    feed: str
    checked_ts: datetime
    range_start: datetime
    range_end: datetime
    buffered_rows: int
    replayed_rows: int
    table_rows: int
    status: str
    explanation: str
    bad_minutes: list[datetime] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def row(self) -> list[Any]:
        return [getattr(self, c) for c in RECON_COLUMNS]


_REPLAY_SQL = (
    "SELECT replay_id, feed, table_name, batches, rows, buffered_rows, "
    "toUnixTimestamp64Micro(first_event_ts), toUnixTimestamp64Micro(last_event_ts), "
    "toUnixTimestamp64Micro(started_ts), toUnixTimestamp64Micro(finished_ts) "
    "FROM ops.replay_log WHERE status = 'finished' {cond} ORDER BY finished_ts, replay_id, table_name"
)


def finished_replays(
    client,
    *,
    replay_id: str | None = None,
    unreconciled: bool = True,
    settle_s: float = SETTLE_S,
    now_s: float | None = None,
) -> dict[str, list[ReplayRow]]:
    """{replay_id: its rows} of finished replays, oldest first. By default only those that
    finished at least `settle_s` ago and have no reconciliation yet."""
    conds, params = [], {}
    if replay_id is not None:
        conds.append("replay_id = {rid:String}")
        params["rid"] = replay_id
    else:
        now_s = time.time() if now_s is None else now_s
        conds.append("toUnixTimestamp64Micro(finished_ts) <= {until:Int64}")
        params["until"] = int((now_s - settle_s) * 1_000_000)
    if unreconciled:
        conds.append(f"replay_id NOT IN (SELECT replay_id FROM {RECON_TABLE})")
    rows = client.query(
        _REPLAY_SQL.format(cond="".join(f" AND {c}" for c in conds)), parameters=params
    ).result_rows
    out: dict[str, list[ReplayRow]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(ReplayRow(*r[:3], *(int(v) for v in r[3:])))
    return out


def new_rows_by_minute(client, row: ReplayRow) -> dict[int, int]:
    """{minute: keys of the feed and range first stored during the replay}."""
    spec = COUNTABLE_TABLES[row.table_name]
    ts = spec.event_ts
    result = client.query(
        "SELECT toUInt32(toStartOfMinute(ev)) AS m, "
        "countIf(first_ins >= {lo:Int64} AND first_ins <= {hi:Int64}) "
        f"FROM (SELECT min({ts}) AS ev, min(toUnixTimestamp64Micro(inserted_ts)) AS first_ins "
        f" FROM {spec.name} WHERE feed = {{feed:String}} "
        f" AND toUnixTimestamp64Micro({ts}) BETWEEN {{first:Int64}} AND {{last:Int64}} "
        f" GROUP BY {spec.key_sql}) GROUP BY m",
        parameters={
            "feed": row.feed,
            "first": row.first_us,
            "last": row.last_us,
            "lo": row.started_us - CLOCK_SLACK_US,
            "hi": row.finished_us + CLOCK_SLACK_US,
        },
    ).result_rows
    return {int(m): int(n) for m, n in result if n}


def ledger_replayed_by_minute(client, feed: str, lo: int, hi: int) -> dict[int, int]:
    rows = client.query(
        f"SELECT toUInt32(minute), sum(replayed) FROM {LEDGER_TABLE} WHERE feed = {{feed:String}} "
        "AND minute >= toDateTime({lo:UInt32}, 'UTC') AND minute < toDateTime({hi:UInt32}, 'UTC') "
        "GROUP BY minute",
        parameters={"feed": feed, "lo": lo, "hi": hi},
    ).result_rows
    return {int(m): int(n) for m, n in rows if n}


def _hhmm(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


def reconcile_replay(
    client, rows: list[ReplayRow], kinds: dict[str, str] | None = None
) -> Reconciliation:
    """Judge one replay of one feed (all its tables) without writing anything."""
    first = rows[0]
    problems: list[str] = []
    notes: list[str] = []
    table_rows = 0
    new_by_minute: dict[int, int] = {}
    for r in rows:
        part = f"{r.table_name}: buffered {r.buffered_rows} = replayed {r.rows}"
        if r.buffered_rows != r.rows:
            problems.append(
                f"{r.table_name}: the buffer held {r.buffered_rows} rows but the replay inserted {r.rows}"
            )
        if r.table_name not in COUNTABLE_TABLES:
            notes.append(f"{part} (not counted per row)")
            continue
        per_minute = new_rows_by_minute(client, r)
        n = sum(per_minute.values())
        table_rows += n
        if r.table_name in _RECORD_NAMES:
            for m, k in per_minute.items():
                new_by_minute[m] = new_by_minute.get(m, 0) + k
        if n < r.rows:
            problems.append(f"{r.table_name}: {r.rows} rows replayed but only {n} new rows stored")
        elif n > r.rows:
            # the live path inserted rows of the same event range while the replay ran
            notes.append(f"{part}, {n} new rows ({n - r.rows} inserted live meanwhile)")
        else:
            notes.append(f"{part} = {n} new rows")
    timed = [r for r in rows if r.table_name in COUNTABLE_TABLES] or rows
    lo_us, hi_us = min(r.first_us for r in timed), max(r.last_us for r in timed)
    bad: list[datetime] = []
    if any(r.table_name in _RECORD_NAMES for r in rows):
        lo_m, hi_m = (lo_us // 60_000_000) * 60, (hi_us // 60_000_000) * 60 + 60
        audited = audit_range(client, first.feed, lo_m, hi_m, kinds)
        wrong = [m for m in audited if m.status != "ok"]
        if wrong:
            bad = [m.minute for m in wrong]
            detail = ", ".join(
                f"{_hhmm(m.minute)} (ledger {m.ledger_count}, table {m.table_count})"
                for m in wrong[:10]
            )
            more = f" and {len(wrong) - 10} more" if len(wrong) > 10 else ""
            problems.append(f"minutes disagreeing with the ledger: {detail}{more}")
        else:
            notes.append(f"ledger agrees in {len(audited)} minute(s)")
        if problems and not bad:
            # The ledger does not say where: name the minutes where fewer new rows arrived
            # than the ledger says this feed replayed.
            expected = ledger_replayed_by_minute(client, first.feed, lo_m, hi_m)
            bad = [
                datetime.fromtimestamp(m, UTC)
                for m in sorted(expected)
                if new_by_minute.get(m, 0) < expected[m]
            ]
            if bad:
                problems.append("minutes short of replayed rows: " + ", ".join(map(_hhmm, bad[:10])))
    status = "failed" if problems else "ok"
    return Reconciliation(
        replay_id=first.replay_id,
        feed=first.feed,
        checked_ts=datetime.now(UTC),
        range_start=datetime_from_us(lo_us),
        range_end=datetime_from_us(hi_us),
        buffered_rows=sum(r.buffered_rows for r in rows),
        replayed_rows=sum(r.rows for r in rows),
        table_rows=table_rows,
        status=status,
        explanation="; ".join(problems or notes),
        bad_minutes=bad,
    )


def reconcile(
    client,
    *,
    replay_id: str | None = None,
    kinds: dict[str, str] | None = None,
    settle_s: float = SETTLE_S,
    write: bool = True,
) -> list[Reconciliation]:
    """Reconcile one replay (by id, even if reconciled before) or every pending one."""
    replays = finished_replays(
        client, replay_id=replay_id, unreconciled=replay_id is None, settle_s=settle_s
    )
    if replay_id is not None and not replays:

        raise InputError(f"no finished replay with id {replay_id!r} in ops.replay_log")
    results = [
        reconcile_replay(client, [r for r in rows if r.feed == feed], kinds)
        for rows in replays.values()
        for feed in dict.fromkeys(r.feed for r in rows)  # one result per replay and feed
    ]
    if write and results:
        client.insert(RECON_TABLE, [r.row() for r in results], column_names=RECON_COLUMNS)
    return results


def latest_reconciliations(client, limit: int = 50) -> list[Reconciliation]:
    """The newest outcome of each (replay, feed) already reconciled, newest first: what
    `feedhouse reconcile` shows when no replay is waiting."""
    cols = ", ".join(f"argMax({c}, checked_ts)" for c in RECON_COLUMNS if c not in
                     ("replay_id", "feed", "checked_ts"))
    rows = client.query(
        f"SELECT replay_id, feed, max(checked_ts) AS checked, {cols} FROM {RECON_TABLE} "
        "GROUP BY replay_id, feed ORDER BY checked DESC LIMIT {limit:UInt32}",
        parameters={"limit": limit},
    ).result_rows
    return [Reconciliation(*r) for r in rows]
