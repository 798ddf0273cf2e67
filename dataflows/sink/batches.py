"""Insert batches: rows of one table as an Arrow table, with the token that names them.

The same `Batch` goes to ClickHouse, into the local buffer (Arrow IPC bytes) and back
out on replay, so a replayed batch is byte-for-byte the batch first tried, carrying the
same `insert_deduplication_token`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import blake2b

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from feedhouse.store.ledger import COUNTERS, LEDGER_TABLE, LedgerDelta, minute_counts

TS = pa.timestamp("us", tz="UTC")
_DICT = pa.dictionary(pa.int32(), pa.string())

TRADES = "market.trades"
QUOTES = "market.quotes"
READINGS = "iot.readings"
BOOKS = "market.book_updates"
DEAD_LETTER = "ops.dead_letter"
FEED_GAPS = "ops.feed_gaps"
REPLAY_LOG = "ops.replay_log"
# tables whose rows are ledger records (counted as inserted/buffered/...)
EVENT_COLUMN = {TRADES: "exchange_ts", QUOTES: "exchange_ts", READINGS: "device_ts",
                BOOKS: "exchange_ts"}
# the time column that spans a batch (replay_log first/last_event_ts, reconciliation
# ranges): the event time of records; when the message arrived for dead letters
TIME_COLUMN = {**EVENT_COLUMN, DEAD_LETTER: "received_ts"}

_SCHEMAS = {
    TRADES: pa.schema(
        [("venue", pa.string()), ("symbol", pa.string()), ("native_symbol", pa.string()),
         ("trade_id", pa.string()), ("price", pa.float64()), ("amount", pa.float64()),
         ("side", pa.string()), ("exchange_ts", TS), ("received_ts", TS),
         ("instrument_type", pa.string()), ("native_amount", pa.float64()),
         ("contract_size", pa.float64()), ("feed", pa.string())]
    ),
    QUOTES: pa.schema(
        [("venue", pa.string()), ("symbol", pa.string()), ("native_symbol", pa.string()),
         ("bid_price", pa.float64()), ("bid_size", pa.float64()), ("ask_price", pa.float64()),
         ("ask_size", pa.float64()), ("exchange_ts", TS), ("received_ts", TS),
         ("instrument_type", pa.string()), ("update_id", pa.uint64()),
         ("native_bid_size", pa.float64()), ("native_ask_size", pa.float64()),
         ("contract_size", pa.float64()), ("feed", pa.string())]
    ),
    READINGS: pa.schema(
        [("device_id", pa.string()), ("sensor", pa.string()), ("seq", pa.uint64()),
         ("value", pa.float64()), ("unit", pa.string()), ("device_ts", TS),
         ("received_ts", TS), ("site", pa.string()), ("feed", pa.string())]
    ),
    BOOKS: pa.schema(  # dataflows.books.columns.BookColumns.to_arrow(dictionary=True)
        [("venue", _DICT), ("symbol", _DICT), ("native_symbol", _DICT),
         ("instrument_type", _DICT), ("exchange_ts", TS), ("received_ts", TS),
         ("is_snapshot", pa.uint8()), ("side", _DICT), ("price", pa.float64()),
         ("amount", pa.float64()), ("native_amount", pa.float64()),
         ("update_id", pa.uint64()), ("prev_update_id", pa.uint64()), ("feed", _DICT)]
    ),
    DEAD_LETTER: pa.schema(
        [("feed", pa.string()), ("received_ts", TS), ("raw", pa.string()), ("error", pa.string())]
    ),
    FEED_GAPS: pa.schema(
        [("feed", pa.string()), ("venue", pa.string()), ("gap_start", TS), ("gap_end", TS),
         ("kind", pa.string()), ("reason", pa.string()), ("missing", pa.uint64())]
    ),
    LEDGER_TABLE: pa.schema(
        [("feed", pa.string()), ("minute", pa.timestamp("s", tz="UTC"))]
        + [(c, pa.uint64()) for c in COUNTERS]
    ),
    REPLAY_LOG: pa.schema(
        [("replay_id", pa.string()), ("feed", pa.string()), ("table_name", pa.string()),
         ("batches", pa.uint32()), ("rows", pa.uint64()), ("buffered_rows", pa.uint64()),
         ("first_event_ts", TS), ("last_event_ts", TS), ("started_ts", TS),
         ("finished_ts", TS), ("status", pa.string()), ("error", pa.string())]
    ),
}

READINGS_SCHEMA = _SCHEMAS[READINGS]
# columns added by migrations 010 and 012, for rows built without them
_COLUMN_DEFAULTS = {"instrument_type": "spot", "contract_size": 1.0, "update_id": 0}
# the venue's own size columns: the size column itself where a row has none (None)
_NATIVE_OF = {"native_amount": "amount", "native_bid_size": "bid_size", "native_ask_size": "ask_size"}


@dataclass
class Batch:
    table: str
    feed: str
    token: str
    data: pa.Table
    minutes: dict[int, int] = field(default_factory=dict)  # event minute -> records
    first_event_us: int = 0
    last_event_us: int = 0
    # token of the combined insert this batch was part of (`combine`), when it had to be
    # buffered: replay inserts the group's batches together again, under that token
    group: str = ""

    @property
    def rows(self) -> int:
        return self.data.num_rows

    @property
    def counted(self) -> bool:
        """Rows of this table are ledger records."""
        return self.table in EVENT_COLUMN

    def slice(self, start: int, length: int, suffix: str) -> Batch:
        return make_batch(self.table, self.feed, f"{self.token}/{suffix}", self.data.slice(start, length))


def make_batch(table: str, feed: str, token: str, data: pa.Table) -> Batch:
    """A Batch with its event-time range and per-minute counts worked out."""
    batch = Batch(table, feed, token, data)
    col = TIME_COLUMN.get(table)
    if col is not None and data.num_rows:
        ts = data.column(col).cast(pa.int64()).to_numpy()
        if table in EVENT_COLUMN:
            batch.minutes = minute_counts(ts)
        batch.first_event_us, batch.last_event_us = int(ts.min()), int(ts.max())
    return batch


def rows_table(table: str, rows: Sequence[Sequence], extra: dict[str, object] | None = None) -> pa.Table:
    """Arrow table for `table` from row tuples in schema order (minus `extra` constants)."""
    schema = _SCHEMAS[table]
    extra = extra or {}
    names = [n for n in schema.names if n not in extra]
    # one list per column, as wide as the shortest row: `zip(*rows)` made an iterator
    # per row (GC-tracked objects, which set off collections: twice the CPU, measured)
    width = min(len(names), min(map(len, rows))) if rows else len(names)
    arrays = {}
    for i in range(width):
        name = names[i]
        arrays[name] = pa.array([r[i] for r in rows] if rows else [],
                                type=schema.field(name).type)
    n = len(rows)
    for name in names[len(arrays):]:  # rows of the shape before migration 010 / 012
        arrays[name] = arrays[_NATIVE_OF[name]] if name in _NATIVE_OF else \
            pa.array([_COLUMN_DEFAULTS[name]] * n, type=schema.field(name).type)
    for name, size in _NATIVE_OF.items():
        if name in arrays and arrays[name].null_count:
            arrays[name] = pc.coalesce(arrays[name], arrays[size])
    for name, value in extra.items():
        arrays[name] = pa.array([value] * n, type=schema.field(name).type)
    return pa.table([arrays[n_] for n_ in schema.names], schema=schema)


def combine(parts: Sequence[Batch], token: str | None = None) -> Batch:
    """One insert for batches of one table (group commit): their rows in order, under a
    token named after theirs, or `token` (a buffered group's, on replay). The same parts
    in the same order always give the same token, so a retried combined insert that had
    landed is dropped like any other."""
    if token is None:
        h = blake2b(digest_size=16)
        for part in parts:
            h.update(part.token.encode())
            h.update(b"\x1f")
        token = f"group:{parts[0].table}:{len(parts)}:{h.hexdigest()}"
    # the parts' dictionary columns (book updates: venue, symbol, feed ...) each carry
    # their own dictionary; the Arrow IPC file an insert is sent as allows one per column,
    # so without unifying them ClickHouse was never asked and the insert failed as a
    # permanent error (live: one insert per part instead; on replay: the group refused).
    # One chunk: each chunk is an Arrow record batch, a block chDB sorts and squashes on
    # its own; a round of 40 small book batches cost ~0.7 µs/row in chDB as chunks, ~0.5
    # as one (bench README, books), and the copy costs a few % of that
    data = pa.concat_tables([p.data for p in parts]).unify_dictionaries().combine_chunks()
    return Batch(parts[0].table, "", token, data)


def ledger_table(delta: LedgerDelta) -> pa.Table:
    cols = delta.columns()
    cols[1] = [int(d.timestamp()) for d in cols[1]]
    schema = _SCHEMAS[LEDGER_TABLE]
    return pa.table(
        [pa.array(c, type=schema.field(i).type) for i, c in enumerate(cols)], schema=schema
    )


def digest(hashes: np.ndarray | None, *parts: object) -> str:
    """16 hex chars naming a batch's content: sum of its key hashes and/or the parts."""
    h = blake2b(digest_size=8)
    if hashes is not None and hashes.size:
        h.update(int(hashes.sum(dtype=np.uint64)).to_bytes(8, "little"))
        h.update(hashes.size.to_bytes(8, "little"))
    for part in parts:
        h.update(str(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()


def table_digest(data: pa.Table) -> str:
    """Content digest of a small table (dead letters, gaps, ledger): its IPC bytes."""
    return blake2b(to_ipc(data), digest_size=8).hexdigest()


def to_ipc(data: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return sink.getvalue().to_pybytes()


def from_ipc(blob: bytes | pa.Buffer) -> pa.Table:
    return pa.ipc.open_stream(blob if isinstance(blob, pa.Buffer) else pa.py_buffer(blob)).read_all()


def schema_of(table: str) -> pa.Schema:
    return _SCHEMAS[table]
