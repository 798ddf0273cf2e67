"""The ClickHouse sink: one partition per feed, batched inserts with deterministic tokens.

Rows accumulate per source partition and flush when `sink.batch_rows` are pending or
the oldest pending batch is `sink.batch_ms` old (checked on every `write_batch`), and at
every snapshot. Each insert carries

    insert_deduplication_token = "{feed}:{source partition}:{table}:{first}-{last}:{digest}"

where first/last are the source positions of the messages the batch covers and digest
names its content (the sum of the records' 64-bit key hashes; for dead letters, gaps
and ledger rows a hash of the rows). The same batch retried, replayed from the buffer or
rebuilt after a restart carries the same token; a batch with other content never does.

`snapshot()` flushes everything pending, then the ledger delta of the epoch: Bytewax
snapshots the sink before the sources of the same epoch, so a source acknowledges
(MQTT ack, replay position) only what is in ClickHouse or the local buffer.

Partitions of one worker share one `Writer` (one held chDB client, one local buffer).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from dataflows.parse import ParsedBatch
from feedhouse import metrics
from feedhouse.batches import (
    DEAD_LETTER,
    EVENT_COLUMN,
    FEED_GAPS,
    QUOTES,
    READINGS,
    TRADES,
    digest,
    ledger_table,
    make_batch,
    rows_table,
    table_digest,
)
from feedhouse.ledger import COUNTERS, LEDGER_TABLE, LedgerDelta
from feedhouse.settings import Settings
from feedhouse.writer import Writer

log = logging.getLogger("feedhouse.sink")


class FeedStats:
    """Running totals per feed for the live status (read by another thread)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero for a new run (a process may run the dataflow more than once: tests, bench)."""
        self.totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
        self.buffered_rows = 0
        self.replays = 0

    def replayed(self, reports) -> None:
        self.replays += 1
        for rep in reports:
            if rep.table in EVENT_COLUMN:
                t = self.totals[rep.feed]
                t["replayed"] += rep.rows
                t["inserted"] += rep.rows
                metrics.count(rep.feed, "replayed", rep.rows)

    def add(self, delta: LedgerDelta) -> None:
        for (feed, _minute), values in delta.cells.items():
            t = self.totals[feed]
            for name, v in zip(COUNTERS, values, strict=True):
                t[name] += v


STATS = FeedStats()
# ledger counter -> Prometheus counter of feedhouse.metrics
_METRIC_OF = {"received": "received", "parsed": "records", "invalid": "invalid",
              "duplicates": "duplicates", "inserted": "inserted", "buffered": "buffered",
              "replayed": "replayed"}


class LatencySample:
    """receive -> insert acked latencies (µs) of directly inserted rows, for benchmarks."""

    def __init__(self, cap: int = 1_000_000) -> None:
        self.cap = cap
        self.reset()

    def reset(self) -> None:
        self.parts: list[np.ndarray] = []
        self.n = 0

    def add(self, values: np.ndarray) -> None:
        if self.n < self.cap:
            self.parts.append(values)
            self.n += values.size

    def values(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.empty(0, dtype=np.int64)


LATENCY = LatencySample()


@dataclass
class _Pending:
    """Rows from one source partition waiting for the next flush."""

    first_pos: int
    last_pos: int
    trades: list = field(default_factory=list)
    quotes: list = field(default_factory=list)
    readings: list = field(default_factory=list)
    hashes: list = field(default_factory=lambda: [[], [], []])
    dead: list = field(default_factory=list)
    gaps: list = field(default_factory=list)
    parsed: list = field(default_factory=list)  # (parsed_us, records) per source batch

    @property
    def rows(self) -> int:
        return len(self.trades) + len(self.quotes) + len(self.readings)


class _SharedWriter:
    """One Writer per process for all partitions; closed when the last one closes."""

    writer: Writer | None = None
    users = 0

    @classmethod
    def acquire(cls, settings: Settings) -> Writer:
        if cls.writer is None:
            cls.writer = Writer(settings)
        cls.users += 1
        return cls.writer

    @classmethod
    def release(cls) -> None:
        cls.users -= 1
        if cls.users <= 0 and cls.writer is not None:
            cls.writer.close()
            cls.writer = None
            cls.users = 0


class FeedSinkPartition(StatefulSinkPartition[ParsedBatch, None]):
    def __init__(self, feed: str, settings: Settings) -> None:
        self.feed = feed
        self.settings = settings
        self.writer = _SharedWriter.acquire(settings)
        self.batch_rows = settings.sink.batch_rows
        self.batch_s = settings.sink.batch_ms / 1000.0
        self.pending: dict[str, _Pending] = {}
        self.rows = 0
        self.oldest: float | None = None
        self.ledger = LedgerDelta()
        self.ledger_ranges: dict[str, list[int]] = {}

    # --- Bytewax hooks ----------------------------------------------------------------------
    def write_batch(self, items: list[ParsedBatch]) -> None:
        ticked = False
        for parsed in items:
            if parsed.last_pos < parsed.first_pos:  # no messages: a tick from the dedup step
                ticked = True  # (quiet feed), or a source batch carrying only gaps
            if parsed.last_pos >= parsed.first_pos or parsed.gaps:
                self._add(parsed)
        if self.rows >= self.batch_rows or (
            self.oldest is not None
            and (ticked or time.monotonic() - self.oldest >= self.batch_s)
        ):
            self.flush_data()
        self._housekeeping()

    def snapshot(self) -> None:
        self.flush_all()
        return None

    def close(self) -> None:
        try:
            self.flush_all()
            self._housekeeping(force=True)  # a last replay try before stopping
        finally:
            _SharedWriter.release()

    # --- internals ----------------------------------------------------------------------------
    def _add(self, parsed: ParsedBatch) -> None:
        if parsed.feed != self.feed:  # routing must keep feeds apart (ledger, tokens)
            raise RuntimeError(f"sink partition {self.feed} got a batch of {parsed.feed}")
        src = parsed.partition
        if parsed.last_pos >= parsed.first_pos:
            rng = self.ledger_ranges.get(src)
            if rng is None:
                self.ledger_ranges[src] = [parsed.first_pos, parsed.last_pos]
            else:
                rng[0], rng[1] = min(rng[0], parsed.first_pos), max(rng[1], parsed.last_pos)
        self.ledger.merge(parsed.ledger)
        if not (parsed.records or parsed.dead or parsed.gaps):
            return
        pend = self.pending.get(src)
        if pend is None:
            pend = self.pending[src] = _Pending(parsed.first_pos, parsed.last_pos)
        pend.first_pos = min(pend.first_pos, parsed.first_pos)
        pend.last_pos = max(pend.last_pos, parsed.last_pos)
        pend.trades.extend(parsed.trades)
        pend.quotes.extend(parsed.quotes)
        pend.readings.extend(parsed.readings)
        if parsed.hashes is not None:
            for acc, h in zip(pend.hashes, parsed.hashes, strict=True):
                acc.append(h)
        pend.dead.extend(parsed.dead)
        pend.gaps.extend(parsed.gaps)
        if parsed.records and parsed.parsed_us:
            pend.parsed.append((parsed.parsed_us, parsed.records))
        self.rows += parsed.records + len(parsed.dead)
        if self.oldest is None:
            self.oldest = time.monotonic()

    def flush_data(self) -> None:
        pending, self.pending = self.pending, {}
        self.rows, self.oldest = 0, None
        for src, pend in pending.items():
            self._flush_one(src, pend)

    def _flush_one(self, src: str, pend: _Pending) -> None:
        feed, rng = self.feed, f"{pend.first_pos}-{pend.last_pos}"
        extra = {"feed": feed}
        inserted = False
        for i, (table, rows) in enumerate(
            ((TRADES, pend.trades), (QUOTES, pend.quotes), (READINGS, pend.readings))
        ):
            if not rows:
                continue
            hashes = np.concatenate(pend.hashes[i]) if pend.hashes[i] else None
            data = rows_table(table, rows, extra)
            # content digest from the dedup key hashes (receive times never enter it, so a
            # batch rebuilt after a restart gets the same token)
            names = digest(hashes, len(rows)) if hashes is not None and hashes.size == len(rows) \
                else digest(None, len(rows), rows[0][:4], rows[-1][:4])
            token = f"{feed}:{src}:{table}:{rng}:{names}"
            batch = make_batch(table, feed, token, data)
            if self.writer.write(batch, self.ledger) == "inserted":
                self._observe(table, rows, batch)
                inserted = True
        if inserted and pend.parsed:
            parsed_us, counts = zip(*pend.parsed, strict=True)
            metrics.observe_us("parsed_to_insert_acked", feed, np.repeat(parsed_us, counts),
                               time.time_ns() // 1000)
        for table, rows in ((DEAD_LETTER, pend.dead), (FEED_GAPS, pend.gaps)):
            if rows:
                data = rows_table(table, [tuple(r) for r in rows])
                token = f"{feed}:{src}:{table}:{rng}:{table_digest(data)}"
                self.writer.write(make_batch(table, feed, token, data), self.ledger)

    def _observe(self, table: str, rows: list, batch) -> None:
        ack_us = time.time_ns() // 1000
        recv_i, event_i = (6, 5) if table == READINGS else (8, 7)
        received = np.fromiter((r[recv_i] for r in rows), dtype=np.int64, count=len(rows))
        LATENCY.add(ack_us - received)
        metrics.observe_us("end_to_end", self.feed, [r[event_i] for r in rows], ack_us)
        metrics.event_time(self.feed, batch.last_event_us)

    def flush_ledger(self) -> None:
        if not self.ledger:
            return
        delta, self.ledger = self.ledger, LedgerDelta()
        ranges = ",".join(f"{k}:{a}-{b}" for k, (a, b) in sorted(self.ledger_ranges.items()))
        self.ledger_ranges = {}
        data = ledger_table(delta)
        token = f"{self.feed}:{ranges}:{LEDGER_TABLE}:{table_digest(data)}"
        self.writer.write(make_batch(LEDGER_TABLE, self.feed, token, data), LedgerDelta())
        STATS.add(delta)
        for counter, name in _METRIC_OF.items():
            n = delta.total(counter)
            if n:
                metrics.count(self.feed, name, n)

    def flush_all(self) -> None:
        self.flush_data()
        self.flush_ledger()
        self._housekeeping()

    def _housekeeping(self, force: bool = False) -> None:
        reports = self.writer.maybe_replay(force)
        if reports:
            STATS.replayed(reports)
        STATS.buffered_rows = self.writer.buffer.pending_rows
        metrics.set_buffer_rows(STATS.buffered_rows)
        self.writer.release_if_wanted()


class ClickHouseSink(FixedPartitionedSink[ParsedBatch, None]):
    """Items are (feed, ParsedBatch); one partition per configured feed."""

    def __init__(self, settings: Settings, feeds: list[str]) -> None:
        self.settings = settings
        self.feeds = list(feeds)

    def list_parts(self) -> list[str]:
        return self.feeds

    def part_fn(self, item_key: str) -> int:
        # Bytewax indexes into the SORTED global list of partitions
        return sorted(self.feeds).index(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> FeedSinkPartition:
        return FeedSinkPartition(for_part, self.settings)
