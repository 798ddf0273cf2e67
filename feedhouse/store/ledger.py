"""The ingest ledger: what every stage counted, per feed and minute (ops.ingest_ledger).

Two kinds of counters, keyed by (feed, minute):

* message counters, by the minute the message was RECEIVED:
  received, with_records, invalid, ignored. Each message is exactly one of
  with_records (it carried >= 1 trade/quote/reading), invalid (no record, >= 1 parse
  error -> dead letter) or ignored (heartbeat, ack, book update).
* record counters, by the minute of the record's own EVENT time (exchange_ts/device_ts):
  parsed (records out of the venue adapter), duplicates (dropped by the dedup window),
  inserted (rows ClickHouse accepted, directly or by a buffer replay), rejected (rows
  ClickHouse refused permanently -> dead letter), buffered (rows written to the local
  buffer) and replayed (buffered rows a replay delivered).

Invariants, for each feed and closed minute (summed over all ledger rows):

    (1) received = with_records + invalid + ignored
    (2) parsed   = duplicates + inserted + rejected + (buffered - replayed)

`buffered - replayed` is what still sits in the local buffer; once it is drained (2)
reads parsed = duplicates + inserted + rejected. Replayed rows are counted in BOTH
`replayed` and `inserted` (inserted = every row that reached ClickHouse).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from feedhouse.core.records import datetime_from_us

MINUTE_US = 60_000_000
COUNTERS = (
    "received",
    "with_records",
    "invalid",
    "ignored",
    "parsed",
    "duplicates",
    "inserted",
    "rejected",
    "buffered",
    "replayed",
)
_INDEX = {name: i for i, name in enumerate(COUNTERS)}
LEDGER_TABLE = "ops.ingest_ledger"
LEDGER_COLUMNS = ["feed", "minute", *COUNTERS]


def minute_of(ts_us: int) -> int:
    """Start of the minute holding ts_us, in epoch seconds."""
    return (ts_us // MINUTE_US) * 60


def minute_counts(event_ts_us: Iterable[int] | np.ndarray) -> dict[int, int]:
    """{minute (epoch s): number of timestamps in it}."""
    arr = np.asarray(event_ts_us, dtype=np.int64)
    if arr.size == 0:
        return {}
    minutes, counts = np.unique((arr // MINUTE_US) * 60, return_counts=True)
    return {int(m): int(c) for m, c in zip(minutes, counts, strict=True)}


@dataclass
class LedgerDelta:
    """Counters not yet written: {(feed, minute epoch s): [counter values]}."""

    cells: dict[tuple[str, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(COUNTERS))
    )

    def add(self, feed: str, minute: int, counter: str, n: int = 1) -> None:
        if n:
            self.cells[(feed, minute)][_INDEX[counter]] += n

    def add_minutes(self, feed: str, counts: dict[int, int], counter: str) -> None:
        for minute, n in counts.items():
            self.add(feed, minute, counter, n)

    def merge(self, other: LedgerDelta) -> None:
        for key, values in other.cells.items():
            mine = self.cells[key]
            for i, v in enumerate(values):
                mine[i] += v

    def total(self, counter: str) -> int:
        i = _INDEX[counter]
        return sum(v[i] for v in self.cells.values())

    def __bool__(self) -> bool:
        return any(any(v) for v in self.cells.values())

    # picklable (a several-process run sends parsed batches, ledger included, between
    # processes): the defaultdict's factory is a lambda, so the cells go as a plain dict
    def __getstate__(self) -> dict:
        return {"cells": dict(self.cells)}

    def __setstate__(self, state: dict) -> None:
        self.cells = defaultdict(lambda: [0] * len(COUNTERS), state["cells"])

    def columns(self) -> list[list[Any]]:
        """Column-oriented rows for ops.ingest_ledger (LEDGER_COLUMNS order)."""

        keys = sorted(k for k, v in self.cells.items() if any(v))
        cols: list[list[Any]] = [[k[0] for k in keys], [datetime_from_us(k[1] * 1_000_000) for k in keys]]
        for i in range(len(COUNTERS)):
            cols.append([self.cells[k][i] for k in keys])
        return cols


@dataclass
class LedgerCheck:
    feed: str
    minute: Any
    counters: dict[str, int]
    messages_ok: bool
    records_ok: bool

    @property
    def ok(self) -> bool:
        return self.messages_ok and self.records_ok


LEDGER_SUMS_SQL = (
    "SELECT feed, minute, "
    + ", ".join(f"sum({c}) AS {c}" for c in COUNTERS)
    + f" FROM {LEDGER_TABLE} {{where}} GROUP BY feed, minute ORDER BY feed, minute"
)


def check_ledger(client, feed: str | None = None, closed_before_s: int | None = None) -> list[LedgerCheck]:
    """Evaluate invariants (1) and (2) per feed and minute.

    `closed_before_s`: only minutes that start before this epoch second (closed minutes);
    default: every minute in the ledger.
    """
    conds = []
    params: dict[str, Any] = {}
    if feed is not None:
        conds.append("feed = {feed:String}")
        params["feed"] = feed
    if closed_before_s is not None:
        conds.append("minute < toDateTime({closed:UInt32}, 'UTC')")
        params["closed"] = int(closed_before_s)
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    result = client.query(LEDGER_SUMS_SQL.format(where=where), parameters=params)
    checks = []
    for row in result.result_rows:
        counters = dict(zip(COUNTERS, (int(v) for v in row[2:]), strict=True))
        c = counters
        checks.append(
            LedgerCheck(
                feed=row[0],
                minute=row[1],
                counters=counters,
                messages_ok=c["received"] == c["with_records"] + c["invalid"] + c["ignored"],
                records_ok=c["parsed"]
                == c["duplicates"] + c["inserted"] + c["rejected"] + c["buffered"] - c["replayed"],
            )
        )
    return checks


def ledger_totals(client, feed: str | None = None) -> dict[str, int]:
    """Every counter summed over all minutes (of one feed, or all)."""
    where = "WHERE feed = {feed:String}" if feed else ""
    sums = ", ".join(f"sum({c})" for c in COUNTERS)
    row = client.query(
        f"SELECT {sums} FROM {LEDGER_TABLE} {where}", parameters={"feed": feed} if feed else {}
    ).result_rows[0]
    return dict(zip(COUNTERS, (int(v or 0) for v in row), strict=True))
