"""The ClickHouse sink: one partition per feed, batched inserts with deterministic tokens.

Rows accumulate per source partition and are handed to the process's `Committer`
(feedhouse/committer.py) as one job: at once while it is free, else when `sink.batch_rows`
are pending or the oldest is `sink.batch_ms` old (checked on every `write_batch`). The
committer writes every job queued meanwhile in one round, one insert per table for all
feeds. Each batch of a job carries

    insert_deduplication_token = "{feed}:{source partition}:{table}:{first}-{last}:{digest}"

where first/last are the source positions of the messages the batch covers and digest
names its content (the sum of the records' 64-bit key hashes; for dead letters, gaps
and ledger rows a hash of the rows); a combined insert carries a token named after its
batches' (`dataflows.sink.batches.combine`). The same batch retried, replayed from the buffer
or rebuilt after a restart carries the same token; a batch with other content never does.

`snapshot()` writes everything pending and waits for it: Bytewax snapshots the sink
before the sources of the same epoch, so a source acknowledges (MQTT ack, replay
position) only what is in ClickHouse or the local buffer. The epoch's ledger delta is
then submitted without waiting (its insert would hold the dataflow a whole insert more
each epoch: the tail of tick-to-row latency) and rides in the partition's snapshot
until the next epoch's drain proves it written; a run resumed from that snapshot
submits it again under the same token, so it is counted once whether or not it landed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from dataflows import metrics
from dataflows.books.columns import BookColumns
from dataflows.parse.columns import Columns, ReadingColumns
from dataflows.parse.stage import ParsedBatch
from dataflows.parse.trade_columns import TradeColumns
from dataflows.sink.batches import (
    BOOKS,
    DEAD_LETTER,
    FEED_GAPS,
    QUOTES,
    READINGS,
    TRADES,
    digest,
    ledger_table,
    make_batch,
    rows_table,
    schema_of,
    table_digest,
)
from dataflows.sink.committer import Committer, Job
from dataflows.sink.gather import GatherWindow
from dataflows.sink.stats import LATENCY, STATS
from dataflows.sink.writer import Writer
from feedhouse.core.dsn import chdb_path
from feedhouse.core.settings import MqttSettings, Settings
from feedhouse.store.candles import DEFAULT_SETTLE_S, CandleBuilder, PeriodicCandles
from feedhouse.store.ledger import LEDGER_TABLE, LedgerDelta

log = logging.getLogger("feedhouse.sink")


# ledger counter -> Prometheus counter of dataflows.metrics
_METRIC_OF = {"received": "received", "parsed": "records", "invalid": "invalid",
              "duplicates": "duplicates", "inserted": "inserted", "buffered": "buffered",
              "replayed": "replayed"}




@dataclass
class _Pending:
    """Rows from one source partition waiting for the next flush."""

    first_pos: int
    last_pos: int
    trades: list = field(default_factory=list)  # chunks: TradeColumns or Trade lists
    n_trades: int = 0
    quotes: list = field(default_factory=list)
    readings: list = field(default_factory=list)  # chunks: ReadingColumns or Reading lists
    n_readings: int = 0
    hashes: list = field(default_factory=lambda: [[], [], []])
    dead: list = field(default_factory=list)
    gaps: list = field(default_factory=list)
    parsed: list = field(default_factory=list)  # (parsed_us, records) per source batch
    books: list = field(default_factory=list)  # BookColumns chunks (books channel)
    book_keys: list = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.n_trades + len(self.quotes) + self.n_readings + \
            sum(len(b) for b in self.books)


class _SinkGroup:
    """The partitions of this process's sink and the one Committer they share (one held
    chDB client, one local buffer). Bytewax runs them on one worker thread (`run_main`),
    so a partition may flush its siblings: the first snapshot of an epoch writes every
    partition's rows and ledger in one round, the others find nothing left to do."""

    committer: Committer | None = None
    partitions: list[FeedSinkPartition] = []
    unsettled = False  # data jobs submitted since the last drain

    @classmethod
    def join(cls, partition: FeedSinkPartition, settings: Settings) -> Committer:
        if cls.committer is not None and cls.committer.writer.settings is not settings:
            # left by a dataflow of this process that aborted (Bytewax does not close
            # partitions then): it belongs to other settings, maybe another store
            stale, cls.committer = cls.committer, None
            stale.abandon()
        if cls.committer is None:
            # embedded: this process alone writes the store, its inserts and builds take
            # turns on the committer thread, so no insert can be in flight during a build
            settle = 0.0 if chdb_path(settings.dsn) else DEFAULT_SETTLE_S
            candles = PeriodicCandles(settings.sink.candles_every_s,
                                      CandleBuilder(settle_s=settle))
            cls.committer = Committer(
                Writer(settings),
                # a round starts once batch_rows are queued; submit() blocks beyond twice that
                max_queued_rows=2 * settings.sink.batch_rows,
                target_rows=settings.sink.batch_rows,
                linger_s=settings.sink.linger_ms / 1000.0,
                linger_from_rows=settings.sink.linger_from_rows,
                housekeeping=lambda writer, force=False: _housekeeping(writer, force, candles),
            )
            cls.partitions = []
        cls.partitions.append(partition)
        return cls.committer

    @classmethod
    def leave(cls, partition: FeedSinkPartition) -> None:
        cls.partitions.remove(partition)
        if not cls.partitions and cls.committer is not None:
            committer, cls.committer = cls.committer, None
            committer.close()

    @classmethod
    def checkpoint(cls, final: bool = False) -> None:
        """Write everything every partition holds and wait for it, then submit their
        ledger deltas (which count the outcome of those rows): waited for only when
        `final`, else proven by the next checkpoint's drain and carried in the
        partitions' snapshots until then. The first snapshot of an epoch does the work;
        the others find no data submitted since and do not wait for the ledger."""
        committer = cls.committer
        assert committer is not None
        for part in cls.partitions:
            part.flush_data()
        # an idle committer has written the last ledger batch: prove it now (the live
        # status counts it then), or a pipeline gone quiet would never show its last epoch
        proven = committer.idle and any(p.unconfirmed for p in cls.partitions)
        if cls.unsettled or final or proven or any(p.ledger_waits() for p in cls.partitions):
            cls.unsettled = False
            committer.drain()
            for part in cls.partitions:
                part.ledger_written()
        ledgers = [job for part in cls.partitions if (job := part.ledger_job()) is not None]
        if ledgers:
            committer.submit(Job([b for job in ledgers for b in job.batches]))
        if final:
            committer.drain()
            for part in cls.partitions:
                part.ledger_written()


def on_store(fn):
    """`fn(client)` on the sink's committer thread, with the warehouse client it holds (an
    embedded store admits one process: the ingest's own readers go through it); its result,
    None when no sink runs. Raises what opening the client raises (ClickHouse down)."""
    committer = _SinkGroup.committer
    if committer is None:
        return None
    return committer.call(lambda writer: fn(writer.held.client()))


def on_buffer(fn):
    """`fn(local_buffer)` on the committer thread (its owner); None when no sink runs."""
    committer = _SinkGroup.committer
    if committer is None:
        return None
    return committer.call(lambda writer: fn(writer.buffer))


def _housekeeping(writer: Writer, force: bool = False,
                  candles: PeriodicCandles | None = None) -> None:
    """After each committer round: replay the buffer once ClickHouse answers, publish the
    buffer's size, build the candles of closed minutes every sink.candles_every_s (on this
    thread, through the held client: never a second open of the store), hand the embedded
    store to a process waiting for it."""
    reports = writer.maybe_replay(force)
    if reports:
        STATS.replayed(reports)
    STATS.buffered_rows = writer.buffer.pending_rows
    metrics.set_buffer_rows(STATS.buffered_rows)
    if candles is not None and not writer.down:
        candles.maybe_build(writer.held.client, force)
    writer.release_if_wanted()


class FeedSinkPartition(StatefulSinkPartition[ParsedBatch, tuple[str, LedgerDelta] | None]):
    def __init__(self, feed: str, settings: Settings, gather: GatherWindow | None = None,
                 resume_state: tuple[str, LedgerDelta] | None = None) -> None:
        self.feed = feed
        self.settings = settings
        self.committer = _SinkGroup.join(self, settings)
        self.batch_rows = settings.sink.batch_rows
        self.batch_s = settings.sink.batch_ms / 1000.0
        # gather (MQTT feeds): rows are gathered for its window, which grows with the
        # feed's rate (ticks only check the age), and the job goes straight into the
        # committer's next round; None: exchange policy (batch_s, the committer lingers)
        self.gather = gather
        self.last_flush = -float("inf")
        self.pending: dict[str, _Pending] = {}
        self.rows = 0
        self.oldest: float | None = None
        self.ledger = LedgerDelta()
        self.ledger_ranges: dict[str, list[int]] = {}
        self.jobs: list[Job] = []  # submitted since the last ledger write
        # the ledger batch submitted and not yet proven written (token, delta, counted
        # in this process's live status once written)
        self.unconfirmed: tuple[str, LedgerDelta, bool] | None = None
        if resume_state is not None:  # the snapshot's unproven ledger batch: again
            token, delta = resume_state
            self.unconfirmed = (token, delta, False)
            self.committer.submit(Job([make_batch(LEDGER_TABLE, feed, token,
                                                  ledger_table(delta))]))
            _SinkGroup.unsettled = True

    # --- Bytewax hooks ----------------------------------------------------------------------
    def write_batch(self, items: list[ParsedBatch]) -> None:
        ticked = False
        for parsed in items:
            if parsed.last_pos < parsed.first_pos:  # no messages: a tick from the dedup step
                ticked = True  # (quiet feed), or a source batch carrying only gaps
            if parsed.last_pos >= parsed.first_pos or parsed.gaps:
                self._add(parsed)
        # hand rows over at once while the committer is free; while it writes, gather up
        # to batch_ms (fewer, larger jobs: it takes every queued job in its next round)
        if self.oldest is None:
            return
        now = time.monotonic()
        if self.gather is not None:  # at once only after a quiet spell (an idle feed's row), else by age
            window = self.gather.seconds
            due = now - self.oldest >= window or (
                self.committer.idle and now - self.last_flush >= window)
        else:
            due = ticked or self.committer.idle or now - self.oldest >= self.batch_s
        if due or self.rows >= self.batch_rows:
            self.flush_data()

    def snapshot(self) -> tuple[str, LedgerDelta] | None:
        _SinkGroup.checkpoint()
        return None if self.unconfirmed is None else self.unconfirmed[:2]

    def close(self) -> None:
        try:
            _SinkGroup.checkpoint(final=True)
            # a last replay try before stopping
            # (and a last candle build for the minutes closed by now)
            housekeeping = self.committer.housekeeping or _housekeeping
            self.committer.call(lambda writer: housekeeping(writer, force=True))
        finally:
            _SinkGroup.leave(self)

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
        if parsed.trades:
            pend.trades.append(parsed.trades)
            pend.n_trades += len(parsed.trades)
        pend.quotes.extend(parsed.quotes)
        if parsed.readings:
            pend.readings.append(parsed.readings)
            pend.n_readings += len(parsed.readings)
        if parsed.hashes is not None:
            for acc, h in zip(pend.hashes, parsed.hashes, strict=True):
                acc.append(h)
        pend.dead.extend(parsed.dead)
        pend.gaps.extend(parsed.gaps)
        levels = len(parsed.books) if parsed.books is not None else 0
        if levels:
            pend.books.append(parsed.books)
            pend.book_keys.append(parsed.book_keys)
        if parsed.records > levels and parsed.parsed_us:
            pend.parsed.append((parsed.parsed_us, parsed.records - levels))
        self.rows += parsed.records + len(parsed.dead)
        if self.oldest is None:
            self.oldest = time.monotonic()

    def flush_data(self) -> None:
        """Submit what is pending: one job, every table of every source partition."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        oldest = self.oldest or 0.0
        if self.gather is not None:
            self.gather.handed_over(self.rows, time.monotonic())
        self.rows, self.oldest, self.last_flush = 0, None, time.monotonic()
        batches: list = []
        observed: list = []  # (batch index, table, rows) of the record batches
        parsed: list = []
        for src, pend in pending.items():
            self._batches_of(src, pend, batches, observed)
            parsed.extend(pend.parsed)
        job = Job(batches, lambda outcomes: self._written(outcomes, observed, parsed),
                  linger_s=None if self.gather is None else 0.0, oldest=oldest)
        self.jobs.append(job)
        self.committer.submit(job)
        _SinkGroup.unsettled = True

    def _batches_of(self, src: str, pend: _Pending, batches: list, observed: list) -> None:
        feed, rng = self.feed, f"{pend.first_pos}-{pend.last_pos}"
        extra = {"feed": feed}
        for i, (table, rows) in enumerate(
            ((TRADES, pend.trades), (QUOTES, pend.quotes), (READINGS, pend.readings))
        ):
            if not rows:
                continue
            hashes = np.concatenate(pend.hashes[i]) if pend.hashes[i] else None
            if table != QUOTES:  # columns from the parser on: Arrow from the arrays
                rows = (ReadingColumns if table == READINGS else TradeColumns).concat(rows)
                data = rows.to_arrow(schema_of(table), feed)
            else:
                data = rows_table(table, rows, extra)
            # content digest from the dedup key hashes (receive times never enter it, so a
            # batch rebuilt after a restart gets the same token)
            names = digest(hashes, len(rows)) if hashes is not None and hashes.size == len(rows) \
                else digest(None, len(rows), rows[0][:4], rows[-1][:4])
            token = f"{feed}:{src}:{table}:{rng}:{names}"
            observed.append((len(batches), table, rows))
            batches.append(make_batch(table, feed, token, data))
        if pend.books:  # level updates: Arrow from the columns, named by their event keys
            books = BookColumns.concat(pend.books)
            keys = [k for k in pend.book_keys if k is not None]
            names = digest(np.concatenate(keys) if keys else None, len(books),
                           len(books.frames))
            batches.append(make_batch(BOOKS, feed, f"{feed}:{src}:{BOOKS}:{rng}:{names}",
                                      books.to_arrow(feed, dictionary=True)))
        for table, rows in ((DEAD_LETTER, pend.dead), (FEED_GAPS, pend.gaps)):
            if rows:
                data = rows_table(table, [tuple(r) for r in rows])
                token = f"{feed}:{src}:{table}:{rng}:{table_digest(data)}"
                batches.append(make_batch(table, feed, token, data))

    def _written(self, outcomes: list[str], observed: list, parsed: list) -> None:
        """On the committer's thread: latency figures of the record batches inserted."""
        inserted = False
        for index, table, rows in observed:
            if outcomes[index] == "inserted":
                self._observe(table, rows)
                inserted = True
        if inserted and parsed:
            parsed_us, counts = zip(*parsed, strict=True)
            metrics.observe_us("parsed_to_insert_acked", self.feed, np.repeat(parsed_us, counts),
                               time.time_ns() // 1000)

    def _observe(self, table: str, rows: list) -> None:
        ack_us = time.time_ns() // 1000
        if isinstance(rows, Columns):
            received, events = rows.received_ts, rows.event_ts
        else:
            recv_i, event_i = (6, 5) if table == READINGS else (8, 7)
            received = np.fromiter((r[recv_i] for r in rows), dtype=np.int64, count=len(rows))
            events = np.fromiter((r[event_i] for r in rows), dtype=np.int64, count=len(rows))
        LATENCY.add(ack_us - received)
        metrics.observe_us("end_to_end", self.feed, events, ack_us)
        metrics.event_time(self.feed, int(events.max()))

    def ledger_job(self) -> Job | None:
        """The ledger delta since the last write as a job (None if empty, or while the
        last one is unproven): message counters, and the outcomes of the jobs submitted
        meanwhile (after `drain()`)."""
        if self.unconfirmed is not None:
            return None
        for job in self.jobs:
            self.ledger.merge(job.ledger)
        self.jobs = []
        if not self.ledger:
            return None
        delta, self.ledger = self.ledger, LedgerDelta()
        ranges = ",".join(f"{k}:{a}-{b}" for k, (a, b) in sorted(self.ledger_ranges.items()))
        self.ledger_ranges = {}
        data = ledger_table(delta)
        token = f"{self.feed}:{ranges}:{LEDGER_TABLE}:{table_digest(data)}"
        self.unconfirmed = (token, delta, True)
        return Job([make_batch(LEDGER_TABLE, self.feed, token, data)])

    def ledger_waits(self) -> bool:
        """A ledger delta waits behind an unproven ledger batch: drain before the next."""
        return self.unconfirmed is not None and bool(self.ledger or self.jobs)

    def ledger_written(self) -> None:
        """After a drain: the ledger batch is written; count its delta in the live
        status and metrics (a resumed one was counted by the run that made it)."""
        unconfirmed, self.unconfirmed = self.unconfirmed, None
        if unconfirmed is None or not unconfirmed[2]:
            return
        delta = unconfirmed[1]
        STATS.add(delta)
        for counter, name in _METRIC_OF.items():
            n = delta.total(counter)
            if n:
                metrics.count(self.feed, name, n)


class ClickHouseSink(FixedPartitionedSink[ParsedBatch, tuple[str, LedgerDelta] | None]):
    """Items are (feed, ParsedBatch); one partition per configured feed."""

    def __init__(self, settings: Settings, feeds: list[str],
                 mqtt: dict[str, MqttSettings] | None = None, local: bool = True) -> None:
        self.settings = settings
        self.feeds = list(feeds)
        self.mqtt = mqtt or {}  # feed -> its MQTT settings: its own gather window
        self.local = local  # False: a cluster's worker process, which never opens the store

    def list_parts(self) -> list[str]:
        return self.feeds if self.local else []

    def part_fn(self, item_key: str) -> int:
        # Bytewax indexes into the SORTED global list of partitions
        return sorted(self.feeds).index(item_key)

    def build_part(self, step_id: str, for_part: str,
                   resume_state: tuple[str, LedgerDelta] | None) -> FeedSinkPartition:
        mqtt = self.mqtt.get(for_part)
        return FeedSinkPartition(for_part, self.settings,
                                 None if mqtt is None else GatherWindow.of(mqtt), resume_state)
