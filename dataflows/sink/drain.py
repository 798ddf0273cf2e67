"""Drain the local buffer into ClickHouse, in insertion order, with the SAME tokens.

Each batch is deleted from the buffer only after ClickHouse accepted it; a batch that had
reached ClickHouse before (the ack was lost) is dropped by its token, so replaying twice
stores nothing twice. A replay writes:
* one ops.replay_log row per feed x table it touched (batches, rows replayed, rows the
  buffer held for them, first/last event time, started/finished, status, error);
* ledger rows: for every replayed record `replayed` AND `inserted` by its event minute,
  which keeps invariant (2) of feedhouse.store.ledger:
      parsed = duplicates + inserted + rejected + (buffered - replayed)
  (buffered rows ClickHouse refuses permanently count as replayed and rejected: they left
  the buffer for the dead letter).
Batches buffered from one combined insert (group commit, `dataflows.sink.batches.combine`)
replay together as that insert, under its token.
If ClickHouse fails again mid-replay, the replay stops (status 'failed'); what remains
stays buffered, and the replay's own log/ledger rows are buffered if they cannot be
written.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from dataflows.sink.batches import REPLAY_LOG, combine, ledger_table, make_batch, rows_table
from feedhouse.store.classify import ErrorClass, classify_error, first_line
from feedhouse.store.ledger import LEDGER_TABLE, LedgerDelta

log = logging.getLogger("dataflows.sink.drain")


@dataclass
class ReplayReport:
    replay_id: str
    feed: str
    table: str
    batches: int = 0
    rows: int = 0
    buffered_rows: int = 0
    first_event_us: int = 0
    last_event_us: int = 0
    started_us: int = 0
    finished_us: int = 0
    status: str = "finished"
    error: str = ""

    def row(self) -> tuple:
        return (
            self.replay_id, self.feed, self.table, self.batches, self.rows, self.buffered_rows,
            self.first_event_us, self.last_event_us, self.started_us, self.finished_us,
            self.status, self.error,
        )


CHUNK = 50  # batches read and deleted per DuckDB statement


def _now_us() -> int:
    return time.time_ns() // 1000


def replay_with(writer) -> list[ReplayReport]:
    """Replay everything the writer's buffer holds (see module doc)."""
    buffer = writer.buffer
    entries = buffer.pending()
    if not entries:
        return []
    replay_id = uuid.uuid4().hex[:16]
    started = _now_us()
    reports: dict[tuple[str, str], ReplayReport] = {}
    for entry in entries:
        rep = reports.setdefault(
            (entry.feed, entry.table), ReplayReport(replay_id, entry.feed, entry.table, started_us=started)
        )
        rep.buffered_rows += entry.rows
    ledger = LedgerDelta()
    failure: str | None = None
    for chunk in _chunks(entries):
        done: list[int] = []
        try:
            for unit in _units(chunk, buffer.load_many(chunk)):
                failure = _replay_unit(writer, unit, reports, ledger, done)
                if failure is not None:
                    break
        finally:
            buffer.delete_many(done)  # only what ClickHouse accepted (or refused for good)
        if failure is not None:
            break
        # a long replay must not starve `feedhouse sql` or a Dagster run waiting for an
        # embedded store: hand it over between chunks (a chunk takes about a second)
        writer.held.release_if_wanted()
    finished = _now_us()
    for rep in reports.values():
        rep.finished_us = finished
        if rep.rows < rep.buffered_rows:
            rep.status, rep.error = "failed", failure or "not all rows replayed"
    _write_outcome(writer, replay_id, list(reports.values()), ledger)
    total = sum(r.rows for r in reports.values())
    log.warning("replay %s: %d row(s) from the local buffer%s", replay_id, total,
                f", stopped: {failure}" if failure else "")
    return list(reports.values())


def _chunks(entries: list) -> list[list]:
    """About CHUNK entries each, never splitting a group (it replays as one insert)."""
    chunks: list[list] = [[]]
    for i, entry in enumerate(entries):
        chunks[-1].append(entry)
        nxt = entries[i + 1] if i + 1 < len(entries) else None
        same_group = nxt is not None and entry.group and nxt.group == entry.group
        if len(chunks[-1]) >= CHUNK and not same_group:
            chunks.append([])
    return [c for c in chunks if c]


def _units(entries: list, batches: list) -> list[list]:
    """(entry, batch) pairs in order, consecutive members of one group together."""
    units: list[list] = []
    for entry, batch in zip(entries, batches, strict=True):
        if units and entry.group and units[-1][-1][0].group == entry.group:
            units[-1].append((entry, batch))
        else:
            units.append([(entry, batch)])
    return units


def _replay_unit(writer, unit: list, reports: dict, ledger: LedgerDelta, done: list[int]) -> str | None:
    """Insert one batch, or a group's batches as the one insert they were, under its
    token; returns the retryable error that stops the replay, if any."""
    batches = [b for _, b in unit]
    insert = batches[0] if len(unit) == 1 else combine(batches, token=unit[0][0].group)
    try:
        writer.insert_once(insert)
    except Exception as exc:
        if classify_error(exc) is ErrorClass.RETRYABLE:
            return first_line(exc)
        for entry, batch in unit:  # refused for good: each batch to the dead letter alone
            writer.reject(batch, exc, ledger)
            if batch.counted:
                ledger.add_minutes(batch.feed, batch.minutes, "replayed")
            done.append(entry.id)
        return None
    for entry, batch in unit:
        done.append(entry.id)
        rep = reports[(entry.feed, entry.table)]
        rep.batches += 1
        rep.rows += entry.rows
        if entry.rows and batch.counted:
            ledger.add_minutes(batch.feed, batch.minutes, "replayed")
            ledger.add_minutes(batch.feed, batch.minutes, "inserted")
        if entry.rows and entry.first_event_us:
            rep.first_event_us = min(rep.first_event_us or entry.first_event_us,
                                     entry.first_event_us)
            rep.last_event_us = max(rep.last_event_us, entry.last_event_us)
    return None


def _write_outcome(writer, replay_id: str, reports: list[ReplayReport], ledger: LedgerDelta) -> None:
    """Replay log and ledger rows: inserted, or buffered when ClickHouse is down again."""

    log_rows = [r.row() for r in reports]
    batches = [make_batch(REPLAY_LOG, "", f"replay:{replay_id}:log", rows_table(REPLAY_LOG, log_rows))]
    if ledger:
        batches.append(make_batch(LEDGER_TABLE, "", f"replay:{replay_id}:ledger", ledger_table(ledger)))
    for batch in batches:
        try:
            writer.insert_once(batch)
        except Exception as exc:
            log.warning("replay %s outcome buffered: %s", replay_id, first_line(exc))
            writer.buffer.put(batch)
