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
Speed (issue 18): the buffer is read in chunks of about CHUNK_ROWS rows (payloads fetched
from DuckDB as one Arrow column, decoded without copies), and consecutive units of a
table with a row key (market.trades, iot.readings) are inserted as ONE insert, under a
token named after their tokens in order (`replay:<table>:<n>:<hash>`, like group commit's
`combine`): one ClickHouse part instead of hundreds. A replay that stopped after such an
insert and before deleting rebuilds the same chunk and the same token, so ClickHouse drops
it. The case a unit's own token exists for -- its first insert landed although the call
failed -- is found before combining: the first and last key of every unit are looked up
(`_landed`), and a unit whose keys are stored is not inserted again (it counts as
replayed, exactly as an insert ClickHouse dropped by its token does).
If ClickHouse fails again mid-replay, the replay stops (status 'failed'); what remains
stays buffered, and the replay's own log/ledger rows are buffered if they cannot be
written.
"""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from hashlib import blake2b

import pyarrow as pa

from dataflows.sink.batches import (
    READINGS,
    REPLAY_LOG,
    TRADES,
    combine,
    ledger_table,
    make_batch,
    rows_table,
)
from feedhouse.store.classify import ErrorClass, classify_error, first_line
from feedhouse.store.faults import apply_row_faults
from feedhouse.store.insert import insert_arrow
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


CHUNK = 2000  # at most this many batches read and deleted per DuckDB statement
CHUNK_ROWS = 500_000  # ... and about this many rows
# tables whose units may be combined into one insert: their row key, as the probe reads it
PROBE_KEYS = {
    TRADES: ("venue", "symbol", "trade_id"),
    READINGS: ("device_id", "sensor", "toString(toUnixTimestamp64Micro(device_ts))", "toString(seq)"),
}


# optimize_on_insert merges the rows of an insert by the ReplacingMergeTree key before
# writing the part: a combined run's batches were deduplicated by the flow already, and
# each was once an insert of its own, so that merge finds nothing; it cost ~0.25 us/row
# of the ~0.9 the insert cost (replicas and readers see the same rows either way: merges
# and FINAL / uniqExact collapse repeats, as for any two inserts)
RUN_SETTINGS = {"optimize_on_insert": 0}


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
    chunks = _chunks(entries)
    # the next chunk is read from DuckDB while this one is inserted (both release the GIL);
    # the buffer is never used by two threads at once: the read is awaited before deleting
    with buffer.roomy(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-read") as reader:
        loading = reader.submit(buffer.load_many, chunks[0])
        for n, chunk in enumerate(chunks):
            batches = loading.result()
            loading = reader.submit(buffer.load_many, chunks[n + 1]) if n + 1 < len(chunks) else None
            failure = _replay_chunk(writer, chunk, batches, reports, ledger, loading)
            if failure is not None:
                break
            # a long replay must not starve `feedhouse sql` or a Dagster run waiting for an
            # embedded store: hand it over between chunks (a chunk takes about a second)
            writer.held.release_if_wanted()
        if loading is not None:
            wait([loading])
    finished = _now_us()
    for rep in reports.values():
        rep.finished_us = finished
        if rep.rows < rep.buffered_rows:
            rep.status, rep.error = "failed", failure or rep.error or "not all rows replayed"
    _write_outcome(writer, replay_id, list(reports.values()), ledger)
    total = sum(r.rows for r in reports.values())
    log.warning("replay %s: %d row(s) from the local buffer%s", replay_id, total,
                f", stopped: {failure}" if failure else "")
    return list(reports.values())


def _replay_chunk(writer, chunk: list, batches: list, reports: dict, ledger: LedgerDelta,
                  loading: Future | None) -> str | None:
    """Insert one chunk's batches; delete those ClickHouse accepted (after the read of the
    next chunk, if one is under way, is done); the error that stops the replay, if any."""
    buffer = writer.buffer
    failure: str | None = None
    done: list[int] = []
    try:
        for run in _runs(_units(chunk, batches)):
            if len(run) > 1 and run[0][0][0].table in PROBE_KEYS:
                failure = _replay_run(writer, run, reports, ledger, done)
            else:
                for unit in run:
                    failure = _replay_unit(writer, unit, reports, ledger, done)
                    if failure is not None:
                        break
            if failure is not None:
                break
    finally:
        if loading is not None:
            wait([loading])
        buffer.delete_many(done)  # only what ClickHouse accepted (or refused for good)
    return failure


def _chunks(entries: list) -> list[list]:
    """About CHUNK_ROWS rows (at most CHUNK entries) each, never splitting a group (it
    replays as one insert)."""
    chunks: list[list] = [[]]
    rows = 0
    for i, entry in enumerate(entries):
        chunks[-1].append(entry)
        rows += entry.rows
        nxt = entries[i + 1] if i + 1 < len(entries) else None
        same_group = nxt is not None and entry.group and nxt.group == entry.group
        if (len(chunks[-1]) >= CHUNK or rows >= CHUNK_ROWS) and not same_group:
            chunks.append([])
            rows = 0
    return [c for c in chunks if c]


def _runs(units: list[list]) -> list[list[list]]:
    """Consecutive units of one table, up to about CHUNK_ROWS rows each."""
    runs: list[list[list]] = []
    rows = 0
    for unit in units:
        table = unit[0][0].table
        size = sum(e.rows for e, _ in unit)
        if runs and runs[-1][0][0][0].table == table and rows + size <= CHUNK_ROWS:
            runs[-1].append(unit)
            rows += size
        else:
            runs.append([unit])
            rows = size
    return runs


def _landed(client, table: str, units: list[list]) -> list[bool]:
    """For each unit: are its first and last rows' keys stored already (its own insert
    landed earlier although the call failed)? One query for the whole run."""
    key = PROBE_KEYS[table]
    ends: list[list[tuple[str, ...]]] = []
    for unit in units:
        first, last = unit[0][1].data, unit[-1][1].data
        ends.append([k for k in (_key(first, 0, key) if first.num_rows else None,
                                 _key(last, last.num_rows - 1, key) if last.num_rows else None)
                     if k is not None])
    probes = [k for pair in ends for k in pair]
    if not probes:
        return [False] * len(units)
    params = {f"k{i}": [p[i] for p in probes] for i in range(len(key))}
    zipped = ", ".join(f"{{k{i}:Array(String)}}" for i in range(len(key)))
    found = client.query(
        f"SELECT DISTINCT {', '.join(key)} FROM {table} "
        f"WHERE tuple({', '.join(key)}) IN (SELECT arrayJoin(arrayZip({zipped})))",
        parameters=params,
    ).result_rows
    stored = {tuple(str(v) for v in row) for row in found}
    return [bool(pair) and all(k in stored for k in pair) for pair in ends]


def _key(data, row: int, key: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for name in key:
        column = name.split("(")[-1].rstrip(")") if "(" in name else name
        value = data.column(column)[row]
        out.append(str(value.cast("int64").as_py() if column == "device_ts" else value.as_py()))
    return tuple(out)


def _run_token(table: str, units: list[list]) -> str:
    h = blake2b(digest_size=16)
    for unit in units:
        h.update((unit[0][0].group or unit[0][0].token).encode())
        h.update(b"\x1f")
    return f"replay:{table}:{len(units)}:{h.hexdigest()}"


def _replay_run(writer, run: list[list], reports: dict, ledger: LedgerDelta, done: list[int]) -> str | None:
    """Several units of one table as one insert (see module doc); a permanent error sends
    the run through `_replay_unit` one unit at a time (which dead-letters what is refused)."""
    table = run[0][0][0].table
    try:
        client = writer.held.client()
        landed = _landed(client, table, run)
        fresh = [unit for unit, was in zip(run, landed, strict=True) if not was]
        if fresh:
            data = pa.concat_tables([b.data for unit in fresh for _, b in unit])
            apply_row_faults(writer.settings.fault_file, data.num_rows)
            insert_arrow(client, table, data, _run_token(table, fresh), settings=RUN_SETTINGS)
            writer.inserts += 1
    except Exception as exc:
        if classify_error(exc) is ErrorClass.RETRYABLE:
            return first_line(exc)
        for unit in run:
            failure = _replay_unit(writer, unit, reports, ledger, done)
            if failure is not None:
                return failure
        return None
    for unit in run:
        _account(unit, reports, ledger, done)
    return None


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
            # (the log says why its rows are missing from `rows`: they were not replayed
            # as buffered, but bisected, inserted, dead-lettered or buffered again)
            rep = reports[(entry.feed, entry.table)]
            rep.error = rep.error or f"refused: {first_line(exc)}"
            writer.reject(batch, exc, ledger)
            if batch.counted:
                ledger.add_minutes(batch.feed, batch.minutes, "replayed")
            done.append(entry.id)
        return None
    _account(unit, reports, ledger, done)
    return None


def _account(unit: list, reports: dict, ledger: LedgerDelta, done: list[int]) -> None:
    """A unit ClickHouse accepted (or had already): delete it, count it replayed."""
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
