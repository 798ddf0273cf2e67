"""Write insert batches to ClickHouse, or to the local buffer when it stays unreachable.

Policy for one batch:
* insert with its `insert_deduplication_token` (a retried or replayed batch is dropped by
  ClickHouse if an earlier attempt landed);
* retryable error (`classify_error`): retry with capped exponential backoff
  (sink.retry_initial_s .. sink.retry_max_s) until ClickHouse has been failing for
  sink.buffer_after_s, then store the batch in the local buffer; while ClickHouse is
  known down, later batches go to the buffer at once (the flow keeps running);
* permanent error: bisect the batch (a few levels) so the good rows still land, and send
  the rows still refused to ops.dead_letter with the error (counted `rejected`).
Record counters go to the LedgerDelta given by the caller: inserted/buffered/rejected by
event minute. While the buffer holds batches, `maybe_replay()` probes ClickHouse
(`SELECT 1`) every sink.replay_probe_s and replays the buffer once it answers.
"""

from __future__ import annotations

import logging
import time

import orjson

from dataflows.sink.batches import DEAD_LETTER, Batch, combine, make_batch, rows_table
from dataflows.sink.buffer import LocalBuffer
from dataflows.sink.drain import ReplayReport, replay_with
from feedhouse.core.settings import Settings
from feedhouse.store.classify import ErrorClass, classify_error, first_line
from feedhouse.store.client import HeldWarehouse
from feedhouse.store.faults import apply_row_faults
from feedhouse.store.insert import insert_arrow
from feedhouse.store.ledger import LedgerDelta

log = logging.getLogger("dataflows.sink.writer")
BISECT_DEPTH = 4


class Writer:
    def __init__(
        self,
        settings: Settings,
        held: HeldWarehouse | None = None,
        buffer: LocalBuffer | None = None,
    ) -> None:
        self.settings = settings
        self.sink = settings.sink
        self.held = held or HeldWarehouse(settings, max_hold_s=self.sink.store_hold_s)
        assert settings.buffer_path is not None
        self.buffer = buffer or LocalBuffer(settings.buffer_path)
        self.down_since: float | None = None
        self._next_probe = 0.0
        self.inserts = 0

    # --- one insert -----------------------------------------------------------------------
    def insert_once(self, batch: Batch) -> None:
        client = self.held.client()
        apply_row_faults(self.settings.fault_file, batch.rows)
        insert_arrow(client, batch.table, batch.data, batch.token)
        self.inserts += 1

    @property
    def down(self) -> bool:
        return self.down_since is not None and (
            time.monotonic() - self.down_since >= self.sink.buffer_after_s
        )

    def _insert_retrying(self, batch: Batch) -> BaseException | None:
        """None when inserted; the last retryable error when it is time to buffer.
        Permanent errors are raised."""
        delay = self.sink.retry_initial_s
        while True:
            if self.down:
                return self._last_error
            try:
                self.insert_once(batch)
            except Exception as exc:
                if classify_error(exc) is ErrorClass.PERMANENT:
                    raise
                self._last_error = exc
                now = time.monotonic()
                if self.down_since is None:
                    self.down_since = now
                    log.warning("ClickHouse unreachable, retrying: %s", first_line(exc))
                left = self.down_since + self.sink.buffer_after_s - now
                if left <= 0:
                    return exc
                time.sleep(min(delay, left))
                delay = min(delay * 2, self.sink.retry_max_s)
                continue
            if self.down_since is not None:
                log.warning("ClickHouse reachable again")
            self.down_since = None
            return None

    _last_error: BaseException | None = None

    # --- the policy -------------------------------------------------------------------------
    def write(self, batch: Batch, ledger: LedgerDelta) -> str:
        """Insert, buffer or dead-letter one batch; returns 'inserted'|'buffered'|'rejected'."""
        if batch.rows == 0:
            return "inserted"
        try:
            error = self._insert_retrying(batch)
        except Exception as exc:
            self.reject(batch, exc, ledger)
            return "rejected"
        return self._settle(batch, ledger, error)

    def _settle(self, batch: Batch, ledger: LedgerDelta, error: BaseException | None,
                group: str = "") -> str:
        """After the insert attempts: inserted (no error) or into the buffer (as part of
        `group`, if any), counted in the ledger either way; returns which."""
        outcome = "inserted" if error is None else "buffered"
        if error is not None:
            batch.group = group
            self.buffer.put(batch)
        if batch.counted:
            ledger.add_minutes(batch.feed, batch.minutes, outcome)
        return outcome

    def write_many(self, items: list[tuple[Batch, LedgerDelta]]) -> list[str]:
        """`write` for batches queued together (group commit): one insert per table.

        The combined insert carries a token named after its batches' (`combine`). If it
        has to be buffered, its batches are stored as one group and replay inserts them
        together again under that token: an insert that landed although the call failed
        (a server timing out after the write) is still dropped on replay. A permanent
        error falls back to the batches one by one, so only the refused rows are
        dead-lettered. Returns each batch's outcome, in order.
        """
        outcomes = ["inserted"] * len(items)
        by_table: dict[str, list[int]] = {}
        for i, (batch, _) in enumerate(items):
            if batch.rows:
                by_table.setdefault(batch.table, []).append(i)
        for indexes in by_table.values():
            if len(indexes) == 1:
                outcomes[indexes[0]] = self.write(*items[indexes[0]])
                continue
            combined = combine([items[i][0] for i in indexes])
            try:
                error = self._insert_retrying(combined)
            except Exception:
                for i in indexes:
                    outcomes[i] = self.write(*items[i])
                continue
            for i in indexes:
                outcomes[i] = self._settle(*items[i], error, group=combined.token)
        return outcomes

    def reject(self, batch: Batch, exc: BaseException, ledger: LedgerDelta, depth: int = 0) -> None:
        """Permanent error: bisect, then dead-letter what ClickHouse still refuses."""
        if batch.rows > 1 and depth < BISECT_DEPTH:
            half = batch.rows // 2
            for part in (batch.slice(0, half, "a"), batch.slice(half, batch.rows - half, "b")):
                try:
                    error = self._insert_retrying(part)
                except Exception as part_exc:
                    self.reject(part, part_exc, ledger, depth + 1)
                    continue
                self._settle(part, ledger, error)
            return
        reason = f"insert into {batch.table} refused: {first_line(exc)}"
        if batch.table == DEAD_LETTER:
            log.error("dead letter rows refused, dropped %d: %s", batch.rows, reason)
            return
        log.error("%d row(s) of %s to the dead letter: %s", batch.rows, batch.feed, reason)
        now_us = time.time_ns() // 1000
        rows = [
            (batch.feed, _received_us(row, now_us), orjson.dumps(row, default=str).decode(), reason)
            for row in batch.data.to_pylist()
        ]
        dead = make_batch(DEAD_LETTER, batch.feed, f"{batch.token}/dead", rows_table(DEAD_LETTER, rows))
        self.write(dead, ledger)
        if batch.counted:
            ledger.add_minutes(batch.feed, batch.minutes, "rejected")

    # --- buffer replay ----------------------------------------------------------------------
    def maybe_replay(self, force: bool = False) -> list:
        """Probe ClickHouse every replay_probe_s (or now, `force`) while the buffer holds
        batches; replay it when the probe answers. Returns the ReplayReports."""
        if self.buffer.pending_batches == 0:
            return []
        now = time.monotonic()
        if now < self._next_probe and not force:
            return []
        self._next_probe = now + self.sink.replay_probe_s
        try:
            self.held.client().query("SELECT 1")
        except Exception as exc:  # still down
            log.debug("replay probe failed: %s", first_line(exc))
            return []
        self.down_since = None

        return replay_with(self)

    def release_if_wanted(self) -> None:
        self.held.release_if_wanted()

    def close(self) -> None:
        self.held.release()
        self.buffer.close()


def _received_us(row: dict, default: int) -> int:
    value = row.get("received_ts")
    if value is None:
        return default
    try:
        return int(value.timestamp() * 1_000_000)
    except AttributeError:
        return default


def drain_buffer(settings, held: HeldWarehouse | None = None) -> list[ReplayReport]:
    """Drain the configured local buffer now (`feedhouse replay`)."""

    writer = Writer(settings, held=held)
    try:
        return replay_with(writer)
    finally:
        if held is None:
            writer.close()
        else:
            writer.buffer.close()
