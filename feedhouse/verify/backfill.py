"""Backfill one day of one venue from archive files into market.trades, idempotently.

Sources (dataflows/archive_columns.py, read as Arrow columns): Binance's daily trade dumps,
Tardis.dev normalized trade files, and recorded captures (parsed by the venue's own live
adapter). Symbols and trade ids are the live adapters', so live and backfilled days meet.

Per file, everything is done on whole columns (no per-row Python):
* rows outside the day are left out;
* repeats inside the archive are dropped, first occurrence wins (a hash group-by on
  (symbol, trade_id) within the file, and a set membership test against the keys of the
  files read before it in this run) -- counted as `repeated` on every run;
* keys already stored for that venue, symbol and day (the live feed or an earlier run)
  are removed by set membership against the stored ids (one Arrow query per symbol);
  rows whose id had to be hashed (the venue has none) are also matched by content
  (exchange time, price, amount, side), so a live day of such a venue meets them too;
* the market.trades contract (feedhouse.core.records.TradeModel) is checked vectorised
  (`contract_mask`); the few rows it refuses are checked again by the pydantic model one
  by one, which gives each its reason, and go to ops.dead_letter with it;
* the remaining rows are inserted in chunks of `chunk_rows` (>= 100k), each with a
  deterministic `insert_deduplication_token` built from what the chunk is (venue, day,
  file, first/last key, size), so a retried chunk is dropped by ClickHouse. Its ledger row
  (feed `backfill:<venue>`) is written first with the derived token: a crash between the
  two leaves ledger > table, and the rerun rebuilds the identical chunk, completing the
  table while the ledger insert is deduplicated.
The warehouse is opened per chunk (short blocks), so the live ingest keeps its store, and
the schema is applied first (as `feedhouse run` does), so a fresh store needs no `init`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflows.sources.archive_columns import COLUMNS, ArchiveFile, find_files, read_file
from feedhouse.core.errors import FeedhouseError, InputError
from feedhouse.store.migrations import apply_migrations
from feedhouse.verify.audit import audit_range
from feedhouse.verify.backfill_contract import contract_mask, split_invalid
from feedhouse.verify.backfill_rows import dead_letters, insert_chunk

CHUNK_ROWS = 500_000
DAY_US = 86_400_000_000


Connect = Callable[[], AbstractContextManager]  # () -> context manager yielding a client
Progress = Callable[[str], None]
Meter = Callable[[str, int, int], None]  # (file name, rows done, rows of the file)


class NoArchiveFiles(FeedhouseError):
    """No archive file matches the venue and day(s): nothing would be loaded."""

    exit_code = 1


def backfill_feed(venue: str) -> str:
    """The ledger feed backfilled rows of a venue are counted under (so the audit covers them)."""
    return f"backfill:{venue}"


@dataclass
class FileLoad:
    path: str
    kind: str  # capture | trades | aggTrades | tardis
    read: int = 0  # trades of the day found in the file
    invalid: int = 0  # failed the contract (-> ops.dead_letter)
    repeated: int = 0  # repeats inside the archive
    existing: int = 0  # already stored (live feed or an earlier run)
    inserted: int = 0
    seconds: float = 0.0


@dataclass
class BackfillResult:
    venue: str
    day: date
    feed: str
    files: list[FileLoad] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole day

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def empty_files(self) -> list[FileLoad]:
        """Files that matched the venue and day but hold no trade of the day."""
        return [f for f in self.files if f.read == 0]

    @property
    def rows_per_s(self) -> float:
        """Trades of the day read and settled (inserted, found stored, repeated or
        refused) per second of wall time."""
        return self.total("read") / self.seconds if self.seconds > 0 else 0.0


def day_bounds_us(day: date) -> tuple[int, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
    return start, start + DAY_US


def days_between(first: date, last: date) -> list[date]:
    return [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]


def _days_text(days: list[date]) -> str:
    if len(days) > 3 and days_between(days[0], days[-1]) == days:
        return f"{days[0]}..{days[-1]}"
    return ", ".join(d.isoformat() for d in days[:5]) + (f" (+{len(days) - 5})" if len(days) > 5 else "")


def archive_plan(archive: Path, venue: str, days: list[date]) -> dict[date, list[ArchiveFile]]:
    """The archive files of each day; fails fast (one line naming the folder, venue and
    days) when a day has none, before anything is loaded."""
    archive = Path(archive)
    if not archive.is_dir():
        raise InputError(f"archive directory {archive} does not exist")
    plan = {day: find_files(archive, day, venue) for day in days}
    missing = [day for day, files in plan.items() if not files]
    if missing:
        raise NoArchiveFiles(
            f"no archive file for venue {venue} on {_days_text(missing)} in {archive} "
            "(expected Binance dumps <SYMBOL>-trades|aggTrades-<day>.zip|csv, Tardis.dev "
            "<exchange>_trades_<day>_<SYMBOL>.csv.gz or captures)"
        )
    return plan


def ensure_schema(connect: Connect) -> list[str]:
    """Apply pending migrations (as `feedhouse run` does); the names applied."""
    with connect() as client:
        return apply_migrations(client)


def stored_ids(client, venue: str, day: date, symbol: str) -> pa.Array:
    """Trade ids stored for a venue, symbol and day (any feed), as an Arrow array."""
    table = client.query_arrow(
        "SELECT trade_id FROM market.trades WHERE venue = {v:String} "
        "AND symbol = {s:String} AND toDate(exchange_ts) = {d:Date}",
        parameters={"v": venue, "s": symbol, "d": day},
    )
    return _strings(table.column(0)) if table.num_columns else pa.array([], pa.string())


def stored_content(client, venue: str, day: date, symbol: str) -> pa.Table:
    """(exchange_ts µs, price, amount, side) of the trades stored for a venue, symbol, day."""
    table = client.query_arrow(
        "SELECT toUnixTimestamp64Micro(exchange_ts) AS ts_us, price, amount, "
        "toString(side) AS side_text FROM market.trades WHERE venue = {v:String} "
        "AND symbol = {s:String} AND toDate(exchange_ts) = {d:Date}",
        parameters={"v": venue, "s": symbol, "d": day},
    )
    return pa.table({
        "exchange_ts": table.column(0).cast(pa.int64()), "price": table.column(1),
        "amount": table.column(2), "side": _strings(table.column(3)),
    }) if table.num_rows else pa.table({"exchange_ts": pa.array([], pa.int64()),
                                        "price": pa.array([], pa.float64()),
                                        "amount": pa.array([], pa.float64()),
                                        "side": pa.array([], pa.string())})


def _strings(col) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return col.cast(pa.string()) if not pa.types.is_string(col.type) else col


# --- one day ------------------------------------------------------------------------------


@dataclass
class _DayState:
    venue: str
    day: date
    feed: str
    migrate: bool = True  # apply pending migrations at the first opening
    seen: dict[str, list[pa.Array]] = field(default_factory=dict)  # symbol -> ids of earlier files
    stored: dict[str, pa.Array] = field(default_factory=dict)  # symbol -> ids stored before
    content: dict[str, pa.Table] = field(default_factory=dict)  # symbol -> stored content


def backfill_day(
    connect: Connect,
    venue: str,
    day: date,
    archive: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
    meter: Meter | None = None,
    files: list[ArchiveFile] | None = None,
    migrate: bool = True,
) -> BackfillResult:
    """Load `venue`'s trades of `day` from the files under `archive` (see module doc).

    Raises NoArchiveFiles when no file matches; a file that matches but holds no trade of
    the day shows up in `result.empty_files`. `migrate`: apply pending migrations first."""
    started = time.perf_counter()
    if files is None:
        files = archive_plan(Path(archive), venue, [day])[day]
    state = _DayState(venue, day, backfill_feed(venue), migrate)
    result = BackfillResult(venue, day, state.feed)
    for file in files:
        load = FileLoad(str(file.path), file.kind)
        result.files.append(load)
        file_started = time.perf_counter()
        _load_file(connect, state, file, load, max(1, chunk_rows), meter)
        load.seconds = time.perf_counter() - file_started
        if progress is not None:
            rate = load.read / load.seconds if load.seconds > 0 else 0.0
            progress(f"{file.path.name}: {load.read} rows of {day} ({load.inserted} inserted, "
                     f"{load.existing} already stored, {load.repeated} repeated, "
                     f"{load.invalid} invalid) in {load.seconds:.1f}s, {rate:,.0f} rows/s")
    if state.migrate:  # no file held a trade of the day: the schema is still applied
        ensure_schema(connect)
    result.seconds = time.perf_counter() - started
    return result


def _load_file(connect: Connect, state: _DayState, file: ArchiveFile, load: FileLoad,
               chunk_rows: int, meter: Meter | None) -> None:
    lo, hi = day_bounds_us(state.day)
    if meter is not None:
        meter(file.path.name, 0, 0)  # started: rows/s counts the reading too
    cols = read_file(file)
    ts = cols["exchange_ts"]
    cols = cols.filter(pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))
    load.read = cols.num_rows
    if meter is not None:
        meter(file.path.name, 0, load.read)
    if not load.read:
        return
    # repeats: first occurrence of each key in the file, and not in an earlier file
    first = _first_occurrences(cols)
    for symbol, ids in _by_symbol(cols, None):
        earlier = state.seen.get(symbol)
        if earlier:
            before = pa.chunked_array(earlier).combine_chunks()
            first[ids.indices] &= ~_numpy_bool(pc.is_in(ids.values, value_set=before))
    cols = cols.filter(pa.array(first))
    load.repeated = load.read - cols.num_rows
    for symbol, ids in _by_symbol(cols, None):
        state.seen.setdefault(symbol, []).append(ids.values)
    name = file.path.name
    # one opening for the schema, the stored keys, dead letters and the first chunk
    with connect() as client:
        if state.migrate:
            apply_migrations(client)
            state.migrate = False
        existing = _existing(client, state, cols)
        load.existing = int(existing.sum())
        cols = cols.filter(pa.array(~existing))
        valid = contract_mask(state.venue, cols)
        if not pc.all(valid).as_py():
            cols, bad = split_invalid(state.venue, cols, valid)
            load.invalid = len(bad)
            if bad:
                dead_letters(client, state.feed, state.venue, state.day, file.path.name,
                             day_bounds_us(state.day)[0], bad)
        if cols.num_rows:
            part = cols.slice(0, chunk_rows)
            insert_chunk(client, state.feed, state.venue, state.day, name, part)
            load.inserted += part.num_rows
    if meter is not None:
        meter(name, load.repeated + load.existing + load.invalid + load.inserted, load.read)
    for start in range(chunk_rows, cols.num_rows, chunk_rows):
        part = cols.slice(start, chunk_rows)
        with connect() as client:  # short blocks: the live ingest keeps its store
            insert_chunk(client, state.feed, state.venue, state.day, name, part)
        load.inserted += part.num_rows
        if meter is not None:
            meter(name, load.repeated + load.existing + load.invalid + load.inserted, load.read)


@dataclass
class _Ids:
    indices: object  # numpy int64 positions in the table
    values: pa.Array


def _by_symbol(cols: pa.Table, mask) -> Iterable[tuple[str, _Ids]]:
    """(symbol, its rows' positions and ids), optionally only rows where mask (numpy bool)
    is True. A file holds one symbol in practice: then no row is copied."""
    symbols = cols["symbol"]
    distinct = pc.unique(symbols).to_pylist()
    ids = cols["trade_id"]
    if len(distinct) == 1:
        if mask is None:
            yield distinct[0], _Ids(np.arange(cols.num_rows), _strings(ids))
        else:
            positions = np.flatnonzero(mask)
            if positions.size:
                yield distinct[0], _Ids(positions, _strings(ids.take(pa.array(positions))))
        return
    for symbol in distinct:
        where = _numpy_bool(pc.equal(symbols, symbol))
        if mask is not None:
            where &= mask
        positions = np.flatnonzero(where)
        if positions.size:
            yield symbol, _Ids(positions, _strings(ids.take(pa.array(positions))))


def _numpy_bool(col) -> np.ndarray:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.fill_null(col, False).to_numpy(zero_copy_only=False).copy()


def _first_occurrences(cols: pa.Table) -> np.ndarray:
    """numpy bool mask: True at the first row of each (symbol, trade_id)."""
    n = cols.num_rows
    mask = np.ones(n, dtype=bool)
    if n < 2:
        return mask
    single = len(pc.unique(cols["symbol"])) == 1
    keys = cols["trade_id"] if single else pc.binary_join_element_wise(
        cols["symbol"], cols["trade_id"], "\x1f")
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if single:
        # numeric ids that strictly increase (every Binance dump, most Tardis files) are
        # distinct without hashing: equal strings would give equal numbers
        try:
            nums = pc.cast(keys, pa.int64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            nums = None
        if nums is not None and bool(np.all(nums[1:] > nums[:-1])):
            return mask
    encoded = pc.dictionary_encode(keys)
    if len(encoded.dictionary) == n:
        return mask
    _, first = np.unique(encoded.indices.to_numpy(zero_copy_only=False), return_index=True)
    mask[:] = False
    mask[first] = True
    return mask


def _existing(client, state: _DayState, cols: pa.Table) -> np.ndarray:
    """numpy bool mask: True where the row's key (or, for hashed ids, content) is stored."""
    existing = np.zeros(cols.num_rows, dtype=bool)
    hashed = cols["hashed"]
    any_hashed = bool(pc.any(hashed).as_py())
    symbols = pc.unique(cols["symbol"]).to_pylist()
    for symbol in symbols:
        if symbol not in state.stored:
            state.stored[symbol] = stored_ids(client, state.venue, state.day, symbol)
        if any_hashed and symbol not in state.content:
            state.content[symbol] = stored_content(client, state.venue, state.day, symbol)
    for symbol, ids in _by_symbol(cols, None):
        stored = state.stored[symbol]
        if len(stored):
            existing[ids.indices] = _numpy_bool(pc.is_in(ids.values, value_set=stored))
    if any_hashed:
        existing |= _content_match(state, cols)
    return existing


def _content_match(state: _DayState, cols: pa.Table):
    """numpy bool mask: hashed-id rows whose (time, price, amount, side) is stored."""
    out = np.zeros(cols.num_rows, dtype=bool)
    keys = ["exchange_ts", "price", "amount", "side"]
    hashed = _numpy_bool(cols["hashed"])
    for symbol, ids in _by_symbol(cols, hashed):
        stored = state.content.get(symbol)
        if stored is None or not stored.num_rows:
            continue
        rows = cols.take(pa.array(ids.indices)).select(keys)
        rows = rows.append_column("i", pa.array(ids.indices, pa.int64()))
        matched = rows.join(stored, keys=keys, join_type="left semi", use_threads=True)
        out[matched["i"].to_numpy()] = True
    return out


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


__all__ = ["COLUMNS", "CHUNK_ROWS", "BackfillResult", "FileLoad", "NoArchiveFiles", "archive_plan",
           "backfill_day", "backfill_feed", "contract_mask", "day_rows", "ensure_schema", "verify_day"]
