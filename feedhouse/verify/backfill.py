"""Backfill one day of one venue from archive files into market.trades, idempotently.

Sources (dataflows/archive.py): recorded captures, parsed by the venue's own adapter (the
live normalization), and Binance's daily trade dumps, read into the same `Trade` records
and validated against the market.trades contract.

Idempotence, three layers:
* keys already stored for that venue, symbol and day are skipped (so a day the live feed
  already stored adds nothing, and a second run inserts nothing);
* repeats inside the archive are dropped (first occurrence wins) by the live path's dedup
  window (dataflows/dedup.py: the same key hashing) held at its 24 h maximum, so every key
  of the day partition is remembered, at 16 bytes a key;
* every chunk is inserted with a deterministic `insert_deduplication_token` built from what
  the chunk is (venue, day, file, first/last key, size), so a retried chunk is dropped by
  ClickHouse. Its ledger row (feed `backfill:<venue>`) is written first with the derived
  token: a crash between the two leaves ledger > table, and the rerun rebuilds the identical
  chunk, completing the table while the ledger insert is deduplicated.
The warehouse is opened per chunk (short blocks), so the live ingest keeps its store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from dataflows.dedup.window import DedupWindow, trade_keys
from dataflows.sink.batches import (
    LEDGER_TABLE,
    TRADES,
    digest,
    ledger_table,
    make_batch,
    rows_table,
)
from dataflows.sources.archive import find_captures, find_dumps, read_dump
from dataflows.sources.capture import capture_url, parse_capture
from dataflows.venues import VENUES, venue_for_url
from dataflows.venues.common import split_concatenated
from feedhouse.core.errors import InputError
from feedhouse.core.records import Trade, validate_trades
from feedhouse.store.ledger import LedgerDelta
from feedhouse.verify.audit import audit_range

CHUNK_ROWS = 50_000
DAY_US = 86_400_000_000
DAY_S = 86_400.0

Connect = Callable[[], AbstractContextManager]  # () -> context manager yielding a client
Progress = Callable[[str], None]


def backfill_feed(venue: str) -> str:
    """The ledger feed backfilled rows of a venue are counted under (so the audit covers them)."""
    return f"backfill:{venue}"


@dataclass
class FileLoad:
    path: str
    kind: str  # capture | trades | aggTrades
    read: int = 0  # trades of the day found in the file
    invalid: int = 0  # failed the contract
    repeated: int = 0  # repeats inside the archive
    existing: int = 0  # already stored (live feed or an earlier run)
    inserted: int = 0


@dataclass
class BackfillResult:
    venue: str
    day: date
    feed: str
    files: list[FileLoad] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)


def day_bounds_us(day: date) -> tuple[int, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
    return start, start + DAY_US


def stored_ids(client, venue: str, day: date, symbol: str) -> set[str]:
    rows = client.query(
        "SELECT DISTINCT trade_id FROM market.trades WHERE venue = {v:String} "
        "AND symbol = {s:String} AND toDate(exchange_ts) = {d:Date}",
        parameters={"v": venue, "s": symbol, "d": day},
    ).result_rows
    return {r[0] for r in rows}


def _valid(chunk: list[Trade]) -> tuple[list[Trade], int]:
    """The chunk's trades that meet the contract, and how many did not."""
    try:
        validate_trades(chunk)
        return chunk, 0
    except ValidationError:
        good = []
        for trade in chunk:
            try:
                validate_trades([trade])
                good.append(trade)
            except ValidationError:
                pass
        return good, len(chunk) - len(good)


def _chunks(items: Iterable[Trade], size: int) -> Iterator[list[Trade]]:
    chunk: list[Trade] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _sources(venue_name: str, day: date, archive: Path) -> Iterator[tuple[str, str, Iterable[Trade]]]:
    """(path, kind, trades) for every archive file of that venue and day."""

    venue = VENUES.get(venue_name)
    normalize = venue.normalize_symbol if venue is not None else split_concatenated
    for dump in find_dumps(archive, day, venue_name):
        yield str(dump.path), dump.kind, read_dump(dump, normalize)
    for path in find_captures(archive, day):
        url = capture_url(path)
        found = venue_for_url(url) if url else None
        if found is None or found.name != venue_name:
            continue
        _, parsed, _ = parse_capture(path, venue_name)
        yield str(path), "capture", parsed.trades


def backfill_day(
    connect: Connect,
    venue: str,
    day: date,
    archive: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> BackfillResult:
    """Load `venue`'s trades of `day` from the files under `archive` (see module doc)."""
    archive = Path(archive)
    if not archive.is_dir():
        raise InputError(f"archive directory {archive} does not exist")
    feed = backfill_feed(venue)
    result = BackfillResult(venue, day, feed)
    lo, hi = day_bounds_us(day)
    stored: dict[str, set[str]] = {}  # symbol -> ids in the table before this run
    # whole-day window and lateness: nothing of the partition is forgotten or judged late
    window = DedupWindow(window_s=DAY_S, allowed_lateness_s=DAY_S)
    for path, kind, trades in _sources(venue, day, archive):
        load = FileLoad(path, kind)
        result.files.append(load)
        fresh: list[Trade] = []
        of_day = (t for t in trades if lo <= t.exchange_ts < hi and t.venue == venue)
        for part in _chunks(of_day, chunk_rows):
            load.read += len(part)
            event_us = np.fromiter((t.exchange_ts for t in part), np.int64, len(part))
            first_time = window.filter(trade_keys(part), event_us)
            load.repeated += len(part) - int(first_time.sum())
            for trade in (t for t, keep in zip(part, first_time, strict=True) if keep):
                if trade.symbol not in stored:
                    with connect() as client:
                        stored[trade.symbol] = stored_ids(client, venue, day, trade.symbol)
                if trade.trade_id in stored[trade.symbol]:
                    load.existing += 1
                else:
                    fresh.append(trade)
        for n, chunk in enumerate(_chunks(fresh, chunk_rows)):
            good, bad = _valid(chunk)
            load.invalid += bad
            if good:
                _insert_chunk(connect, feed, venue, day, Path(path).name, good)
                load.inserted += len(good)
            if progress is not None:
                progress(f"{Path(path).name}: chunk {n + 1}, {load.inserted} rows inserted")
    return result


def _insert_chunk(connect: Connect, feed: str, venue: str, day: date, name: str, trades: list[Trade]) -> None:
    first, last = trades[0], trades[-1]
    token = "backfill/" + digest(
        None, venue, day, name, first.symbol, first.trade_id, last.symbol, last.trade_id, len(trades)
    )
    batch = make_batch(TRADES, feed, token, rows_table(TRADES, trades, extra={"feed": feed}))
    ledger = LedgerDelta()
    ledger.add_minutes(feed, batch.minutes, "parsed")
    ledger.add_minutes(feed, batch.minutes, "inserted")
    with connect() as client:
        # ledger first: see the module doc (a crash in between heals on the rerun)
        client.insert_arrow(
            LEDGER_TABLE, ledger_table(ledger), settings={"insert_deduplication_token": token + "/ledger"}
        )
        client.insert_arrow(TRADES, batch.data, settings={"insert_deduplication_token": token})


def day_rows(client, venue: str, day: date) -> int:
    """Distinct trades stored for a venue and day (all feeds)."""
    return int(client.query(
        "SELECT uniqExact(symbol, trade_id) FROM market.trades "
        "WHERE venue = {v:String} AND toDate(exchange_ts) = {d:Date}",
        parameters={"v": venue, "d": day},
    ).result_rows[0][0])


def verify_day(client, result: BackfillResult) -> list:
    """Minutes of the backfilled day where the ledger and the table disagree for its feed."""

    lo, hi = (b // 1_000_000 for b in day_bounds_us(result.day))
    return [m for m in audit_range(client, result.feed, lo, hi) if m.status != "ok"]
