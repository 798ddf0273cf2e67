"""Backfill one day of one venue's order books from Tardis.dev incremental_book_L2 files
into market.book_updates, idempotently, the way the trade backfill loads trades
(feedhouse/verify/backfill.py): whole columns, no per-row Python.

Per file (dataflows/books/tardis.py reads it as market.book_updates columns):
* rows outside the day are left out;
* repeats inside the file (same table key) are dropped, first occurrence wins: `repeated`;
* rows already stored for the venue and day (an earlier run, or the live feed where it
  stored the same level update with no venue id) are removed by an anti-join on the
  table's key: `existing`;
* the rest is inserted in chunks, each under a deterministic insert_deduplication_token
  made from what it is (venue, day, file, offset, size), its ledger rows (feed
  `backfill:<venue>`, parsed and inserted per minute) first, so the row-count audit
  covers backfilled books as it covers trades.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflows.books.tardis import find_tardis_books, read_tardis_book
from dataflows.sink.batches import LEDGER_TABLE, digest, ledger_table
from dataflows.sources.archive_columns import find_files
from feedhouse.core.tables import BOOK_UPDATES
from feedhouse.store.insert import insert_arrow
from feedhouse.store.ledger import LedgerDelta, minute_counts
from feedhouse.verify.backfill import (
    CHUNK_ROWS,
    Connect,
    NoArchiveFiles,
    backfill_feed,
    day_bounds_us,
    ensure_schema,
)

KEY = [c for c in BOOK_UPDATES.key if c != "venue"]
_DAY_WHERE = ("WHERE venue = {venue:String} "
              "AND exchange_ts >= fromUnixTimestamp64Micro({lo:Int64}, 'UTC') "
              "AND exchange_ts < fromUnixTimestamp64Micro({hi:Int64}, 'UTC')")


@dataclass
class BookFileLoad:
    path: str
    read: int = 0  # level updates of the day in the file
    repeated: int = 0
    existing: int = 0
    inserted: int = 0


@dataclass
class BookBackfill:
    venue: str
    day: date
    feed: str
    files: list[BookFileLoad] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)


def _first_occurrences(table: pa.Table) -> pa.Table:
    indexed = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    first = indexed.group_by(KEY, use_threads=False).aggregate([("_row", "min")])
    return table.take(np.sort(first["_row_min"].to_numpy()))


def _not_stored(client, venue: str, day: date, table: pa.Table) -> pa.Table:
    lo, hi = day_bounds_us(day)
    stored = client.query_arrow(
        f"SELECT {', '.join(KEY)} FROM {BOOK_UPDATES.name} {_DAY_WHERE}",
        parameters={"venue": venue, "lo": lo, "hi": hi})
    if not stored.num_rows:
        return table
    stored = stored.cast(table.select(KEY).schema)
    indexed = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    joined = indexed.join(stored, KEY, join_type="left anti", use_threads=False)
    return table.take(np.sort(joined["_row"].to_numpy()))


def archive_kinds(archive: Path, day: date, venue: str) -> set[str]:
    """What the archive holds for `venue` and `day`: {"trades", "books"}, either or none."""
    kinds = {"trades"} if find_files(Path(archive), day, venue) else set()
    return kinds | ({"books"} if find_tardis_books(Path(archive), day, venue) else set())


def day_book_rows(client, venue: str, day: date) -> int:
    """Distinct level updates stored for a venue and day (all feeds; the table's key)."""
    lo, hi = day_bounds_us(day)
    return int(client.query(
        f"SELECT uniqExact({', '.join(KEY)}) FROM {BOOK_UPDATES.name} {_DAY_WHERE}",
        parameters={"venue": venue, "lo": lo, "hi": hi}).result_rows[0][0])


def backfill_books_day(connect: Connect, venue: str, day: date, archive: Path, *,
                       chunk_rows: int = CHUNK_ROWS) -> BookBackfill:
    """Load `venue`'s Tardis incremental_book_L2 files of `day` under `archive`."""
    files = find_tardis_books(Path(archive), day, venue)
    if not files:
        raise NoArchiveFiles(f"no Tardis incremental_book_L2 file of {venue} for {day} "
                             f"under {archive}")
    ensure_schema(connect)
    feed = backfill_feed(venue)
    result = BookBackfill(venue, day, feed)
    lo, hi = day_bounds_us(day)
    for path, exchange in files:
        load = BookFileLoad(str(path))
        result.files.append(load)
        table = read_tardis_book(path, exchange, feed)
        ts = pc.cast(table["exchange_ts"], pa.int64())
        table = table.filter(pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))
        load.read = table.num_rows
        table = _first_occurrences(table)
        load.repeated = load.read - table.num_rows
        with connect() as client:
            fresh = _not_stored(client, venue, day, table)
        load.existing = table.num_rows - fresh.num_rows
        for start in range(0, fresh.num_rows, max(1, chunk_rows)):
            part = fresh.slice(start, chunk_rows)
            token = "backfill-books/" + digest(None, venue, day, path.name, start, part.num_rows)
            ledger = LedgerDelta()
            minutes = minute_counts(pc.cast(part["exchange_ts"], pa.int64()).to_numpy())
            ledger.add_minutes(feed, minutes, "parsed")
            ledger.add_minutes(feed, minutes, "inserted")
            with connect() as client:  # ledger first: a crash in between heals on the rerun
                insert_arrow(client, LEDGER_TABLE, ledger_table(ledger), token + "/ledger")
                insert_arrow(client, BOOK_UPDATES.name, part, token)
            load.inserted += part.num_rows
    return result
