"""The local buffer: a DuckDB file holding insert batches while ClickHouse is unreachable.

A batch is acknowledged only once `put()` has committed it (DuckDB commits are durable),
and deleted only after ClickHouse accepted it (`delete(id)` after the insert). Each
batch keeps its table, feed, dedup token, row count, event-time range, per-minute record
counts (for the ledger) and its rows as Arrow IPC bytes. `pending()` lists batches in
insertion order. The file survives a crash of its process: reopen it and continue.
One process opens the file at a time (DuckDB's own lock).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from dataflows.sink.batches import Batch, from_ipc, to_ipc
from feedhouse.core.errors import FeedhouseError

_SCHEMA = [
    "CREATE SEQUENCE IF NOT EXISTS batch_seq START 1",
    """CREATE TABLE IF NOT EXISTS batches (
        id BIGINT PRIMARY KEY DEFAULT nextval('batch_seq'),
        stored_ts TIMESTAMPTZ DEFAULT current_timestamp,
        table_name VARCHAR NOT NULL,
        feed VARCHAR NOT NULL,
        token VARCHAR NOT NULL,
        rows BIGINT NOT NULL,
        first_event_us BIGINT,
        last_event_us BIGINT,
        minutes VARCHAR,
        payload BLOB NOT NULL
    )""",
    # token of the combined insert a batch was part of ('' alone); buffers written before
    # group commit get the column on open
    "ALTER TABLE batches ADD COLUMN IF NOT EXISTS insert_group VARCHAR DEFAULT ''",
]


@dataclass(frozen=True)
class Buffered:
    """A stored batch without its rows (load them with `LocalBuffer.load`)."""

    id: int
    table: str
    feed: str
    token: str
    rows: int
    first_event_us: int
    last_event_us: int
    minutes: dict[int, int]
    group: str = ""


# DuckDB's buffer pool defaults to 80% of RAM and keeps the pages it read or wrote; the
# buffer holds a few batches at a time, so a small pool suffices (it spills beyond it)
MEMORY_LIMIT = "128MB"
# ... but a drain reads chunks of ~500k rows (~64 MB of payloads, converted to Arrow in
# buffers that grow by doubling) while the previous chunk is inserted: 128 MB fails with
# "Out of Memory Error"; the drain raises the limit to this while it runs (`roomy`)
DRAIN_MEMORY_LIMIT = "1GB"


class LocalBuffer:
    def __init__(self, path: Path | str, memory_limit: str = MEMORY_LIMIT) -> None:
        self.path = Path(path)
        self.memory_limit = memory_limit
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), config={"memory_limit": memory_limit})
        except duckdb.IOException as exc:
            raise FeedhouseError(
                f"local buffer {self.path} is in use by another process "
                f"({str(exc).splitlines()[0][:200]})"
            ) from None
        for statement in _SCHEMA:
            self._con.execute(statement)
        self._rows, self._batches = self._count()

    def _count(self) -> tuple[int, int]:
        rows, batches = self._con.execute("SELECT coalesce(sum(rows), 0), count() FROM batches").fetchone()
        return int(rows), int(batches)

    @property
    def pending_rows(self) -> int:
        return self._rows

    @property
    def pending_batches(self) -> int:
        return self._batches

    def put(self, batch: Batch) -> int:
        """Store a batch durably; returns its id. Only then is the batch acknowledged."""
        minutes = json.dumps({str(k): v for k, v in batch.minutes.items()})
        (batch_id,) = self._con.execute(
            "INSERT INTO batches (table_name, feed, token, rows, first_event_us, last_event_us,"
            " minutes, payload, insert_group) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [batch.table, batch.feed, batch.token, batch.rows, batch.first_event_us,
             batch.last_event_us, minutes, to_ipc(batch.data), batch.group],
        ).fetchone()
        self._rows += batch.rows
        self._batches += 1
        return int(batch_id)

    def pending(self, limit: int | None = None) -> list[Buffered]:
        """Stored batches in insertion order."""
        sql = (
            "SELECT id, table_name, feed, token, rows, first_event_us, last_event_us, minutes,"
            " insert_group FROM batches ORDER BY id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            Buffered(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5] or 0), int(r[6] or 0),
                     {int(k): int(v) for k, v in json.loads(r[7] or "{}").items()}, r[8] or "")
            for r in self._con.execute(sql).fetchall()
        ]

    def load(self, entry: Buffered) -> Batch:
        (blob,) = self._con.execute("SELECT payload FROM batches WHERE id = ?", [entry.id]).fetchone()
        data: pa.Table = from_ipc(blob)
        return Batch(entry.table, entry.feed, entry.token, data, entry.minutes,
                     entry.first_event_us, entry.last_event_us, entry.group)

    def load_many(self, entries: list[Buffered]) -> list[Batch]:
        """`load` for several batches in one query (replay reads in chunks)."""
        if not entries:
            return []
        # payloads as Python bytes: one copy out of DuckDB, then read in place; fetching
        # them as one Arrow column cost more (DuckDB copies big blobs into Arrow buffers
        # that grow by doubling, and combining the column's chunks copies them again)
        found = dict(self._con.execute(
            "SELECT id, payload FROM batches WHERE id IN (SELECT unnest(?))", [[e.id for e in entries]]
        ).fetchall())
        return [Batch(e.table, e.feed, e.token, from_ipc(found[e.id]),
                      e.minutes, e.first_event_us, e.last_event_us, e.group) for e in entries]

    @contextmanager
    def roomy(self, memory_limit: str = DRAIN_MEMORY_LIMIT) -> Iterator[None]:
        """DuckDB's memory limit raised for the block (a drain's large reads)."""
        self._con.execute(f"SET memory_limit = '{_size(memory_limit)}'")
        try:
            yield
        finally:
            self._con.execute(f"SET memory_limit = '{_size(self.memory_limit)}'")

    def delete(self, batch_id: int) -> None:
        """Forget a batch: call only after ClickHouse accepted it."""
        self.delete_many([batch_id])

    def delete_many(self, batch_ids: list[int]) -> None:
        """Forget batches ClickHouse accepted (one statement; a crash before it only
        means those batches are replayed again, and their tokens make that a no-op)."""
        if not batch_ids:
            return
        # no RETURNING: it reads every deleted row whole, payload included (DuckDB
        # decompresses it), which cost more than the delete; the counts are re-read instead
        # (a scan of two small columns)
        self._con.execute("DELETE FROM batches WHERE id IN (SELECT unnest(?))", [list(batch_ids)])
        self._rows, self._batches = self._count()
        if self._batches == 0:
            # emptied (an outage replayed): DuckDB otherwise keeps the deleted batches'
            # blocks cached, 2-4 MB more after every outage up to its memory limit
            # (docs/operations-soak.md); a checkpoint of the empty table frees them
            self._con.execute("CHECKPOINT")

    def memory_bytes(self) -> dict[str, int]:
        """DuckDB's own accounting (duckdb_memory(): buffer pool, blocks, allocator) by tag."""
        rows = self._con.execute(
            "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0"
        ).fetchall()
        return {str(tag): int(n) for tag, n in rows}

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> LocalBuffer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _size(text: str) -> str:
    """A memory size as DuckDB's SET takes it ('128MB', '1GB'); refuses anything else."""
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", text.strip(), re.IGNORECASE):
        raise FeedhouseError(f"local buffer memory limit {text!r} is not a size like '512MB'")
    return text.strip()
