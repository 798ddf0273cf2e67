"""Parse a source micro-batch into records, dead letters and ledger counts.

One `MessageBatch` in, one `ParsedBatch` out. Message counters go to the ledger by the
minute the message was received; `parsed` by the minute of each record's event time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from dataflows import metrics
from dataflows.books.columns import BookColumns
from dataflows.books.live import BookFeed, level_minutes
from dataflows.frames import Gap, MessageBatch
from dataflows.parse.columns import Columns, ReadingColumns
from dataflows.parse.trade_columns import TradeColumns
from dataflows.venues import get_venue
from dataflows.venues.base import BatchResult
from feedhouse.core.records import ParseResult, Quote, Reading, Trade
from feedhouse.store.ledger import LedgerDelta, minute_counts, minute_of

# (frame, received_ts µs) -> ParseResult; MQTT parsers also get the topic as 3rd argument.
ParseOne = Callable[..., ParseResult]


class DeadLetter(NamedTuple):
    feed: str
    received_ts: int
    raw: str
    error: str


class ParsedBatch(NamedTuple):
    feed: str
    partition: str
    first_pos: int
    last_pos: int
    trades: TradeColumns | list[Trade]  # columns from the parsers (reads as a list of Trade)
    quotes: list[Quote]
    readings: list[Reading] | ReadingColumns  # MQTT: columns (reads as a list of Reading)
    dead: list[DeadLetter]
    gaps: list[Gap]
    ledger: LedgerDelta
    # key hashes of trades, quotes, readings (set by the dedup step; name batch contents)
    hashes: tuple | None = None
    parsed_us: int = 0  # when parsing finished (latency of the parsed -> insert-acked hop)
    books: BookColumns | None = None  # level updates of a feed with the books channel
    book_keys: object = None  # their dedup keys, one per book event (set by the dedup step)

    @property
    def records(self) -> int:
        n = len(self.trades) + len(self.quotes) + len(self.readings)
        return n + len(self.books) if self.books is not None else n


_OUTCOMES = ("invalid", "ignored", "with_records")  # by the sign of a frame's count, + 1


def _ledger_messages(ledger: LedgerDelta, feed: str, messages, outcome) -> None:
    """Message counters by receive minute; `outcome` the list of each message's
    'with_records'|'invalid'|'ignored', or (exchange feeds) an array of each frame's
    record count (> 0 with records, 0 ignored, < 0 invalid)."""
    if not messages:
        return
    if isinstance(outcome, np.ndarray):
        signs = np.sign(outcome) + 1
        counts = dict(zip(_OUTCOMES, np.bincount(signs, minlength=3).tolist(), strict=True))
        outcome = None
    else:
        counts = Counter(outcome)
    minute = minute_of(messages[0][0])
    if minute == minute_of(messages[-1][0]):  # the usual case: one minute, count in bulk
        ledger.add(feed, minute, "received", len(messages))
        for name, n in counts.items():
            if n:
                ledger.add(feed, minute, name, n)
        return
    names = outcome if outcome is not None else [_OUTCOMES[s] for s in signs.tolist()]
    for (received_ts, _raw), name in zip(messages, names, strict=True):
        minute = minute_of(received_ts)
        ledger.add(feed, minute, "received")
        ledger.add(feed, minute, name)


def _count_parsed(ledger: LedgerDelta, feed: str, trades, quotes, readings) -> None:
    for records, ts_field in ((trades, 7), (quotes, 7), (readings, 5)):
        if records:
            ts = records.event_ts if isinstance(records, Columns) \
                else [r[ts_field] for r in records]
            ledger.add_minutes(feed, minute_counts(ts), "parsed")


def parse_batch(
    batch: MessageBatch, parse_one: ParseOne | None = None, keep_quotes: bool = True,
    books: BookFeed | None = None,
) -> ParsedBatch:
    """Parse every message of the batch: the venue's batch parser (`parse_many`) for
    exchange feeds, or `parse_one(frame, received_ts[, topic])` per message (MQTT).
    `keep_quotes=False` (a feed whose `channels` leave quotes out): quotes a venue sends
    anyway are dropped; a message that held only those counts as ignored.
    `books` (a feed with the books channel): its book frames become level updates too."""
    if parse_one is None:
        parsed = _parse_exchange(batch, keep_quotes, books)
    else:
        parsed = _parse_each(batch, parse_one)
    done_us = time.time_ns() // 1000
    _observe_hops(parsed, batch, done_us)
    return parsed._replace(parsed_us=done_us)


def _observe_hops(parsed: ParsedBatch, batch: MessageBatch, done_us: int) -> None:
    """Latency histograms of the first two hops: exchange -> receive, receive -> parsed."""
    if not batch.messages:
        return
    metrics.observe_us("receive_to_parsed", parsed.feed, [m[0] for m in batch.messages], done_us)
    for records, event_i, received_i in ((parsed.trades, 7, 8), (parsed.readings, 5, 6)):
        if not records:
            continue
        if isinstance(records, Columns):
            metrics.observe_us("exchange_to_receive", parsed.feed, records.event_ts,
                               records.received_ts)
        else:
            metrics.observe_us("exchange_to_receive", parsed.feed,
                               [r[event_i] for r in records], [r[received_i] for r in records])


def _parse_columns(batch: MessageBatch, parse_columns) -> ParsedBatch:
    """MQTT: the whole micro-batch at once, readings as columns."""
    feed = batch.feed
    topics = batch.topics if batch.topics is not None else [""] * len(batch.messages)
    readings, outcomes, invalid = parse_columns(batch.messages, topics)
    messages = batch.messages
    dead = [DeadLetter(feed, messages[i][0], bad.raw, bad.reason) for i, bad in invalid]
    ledger = LedgerDelta()
    _ledger_messages(ledger, feed, messages, outcomes)
    _count_parsed(ledger, feed, (), (), readings)
    return ParsedBatch(
        feed, batch.partition, batch.first_pos, batch.last_pos,
        [], [], readings, dead, list(batch.gaps), ledger,
    )


def _parse_each(batch: MessageBatch, parse_one: ParseOne) -> ParsedBatch:
    parse_columns = getattr(parse_one, "parse_columns", None)
    if parse_columns is not None:
        return _parse_columns(batch, parse_columns)
    feed = batch.feed
    trades: list[Trade] = []
    quotes: list[Quote] = []
    readings: list[Reading] = []
    dead: list[DeadLetter] = []
    outcomes: list[str] = []
    topics = batch.topics
    for i, (received_ts, raw) in enumerate(batch.messages):
        result = parse_one(raw, received_ts) if topics is None else parse_one(raw, received_ts, topics[i])
        if result.trades or result.quotes or result.readings:
            outcomes.append("with_records")
            trades.extend(result.trades)
            quotes.extend(result.quotes)
            readings.extend(result.readings)
        else:
            outcomes.append("invalid" if result.invalid else "ignored")
        for bad in result.invalid:
            dead.append(DeadLetter(feed, received_ts, bad.raw, bad.reason))
    ledger = LedgerDelta()
    _ledger_messages(ledger, feed, batch.messages, outcomes)
    _count_parsed(ledger, feed, trades, quotes, readings)
    return ParsedBatch(
        feed, batch.partition, batch.first_pos, batch.last_pos,
        TradeColumns.from_rows(trades), quotes, readings, dead, list(batch.gaps), ledger,
    )


_CONNECTION_PARSERS: dict[tuple[str, str], object] = {}  # (feed, venue key) -> parse_many


def _parse_many(feed: str, venue_key: str):
    """The venue's batch parser; per feed for venues with per-connection state."""
    venue = get_venue(venue_key)
    if venue.session is None:
        return venue.parse_many
    key = (feed, venue_key)
    found = _CONNECTION_PARSERS.get(key)
    if found is None:
        found = _CONNECTION_PARSERS[key] = venue.parser()[1]
    return found


def _parse_exchange(batch: MessageBatch, keep_quotes: bool = True,
                    books: BookFeed | None = None) -> ParsedBatch:
    feed = batch.feed
    if books is not None and books.only:  # a books-only feed: no trade parse at all
        result = BatchResult(counts=[0] * len(batch.messages))
    else:
        result = _parse_many(feed, batch.venue)(batch.messages)
    counts = result.counts
    if not keep_quotes and result.quotes:
        # A message's records all carry its received_ts: one with records but no trade
        # left held only quotes.
        with_trades = set(result.trades.received_ts.tolist())
        counts = [n if n <= 0 or batch.messages[i][0] in with_trades else 0
                  for i, n in enumerate(counts)]
        result.quotes = []
    book = None
    if books is not None:  # a message with levels holds records; a bad book frame is invalid
        book = books.apply(batch.messages, max(
            (g.gap_end for g in batch.gaps if g.kind == "disconnect"), default=None))
        counts = [n if n != 0 else (1 if m else 0) for n, m in zip(counts, book.levels, strict=True)]
        for i, _raw, _why in book.invalid:
            if counts[i] == 0:
                counts[i] = -1

    ledger = LedgerDelta()
    _ledger_messages(ledger, feed, batch.messages, np.array(counts, dtype=np.int64))
    _count_parsed(ledger, feed, result.trades, result.quotes, ())
    messages = batch.messages
    dead = [DeadLetter(feed, messages[i][0], bad.raw, bad.reason) for i, bad in result.invalid]
    gaps = list(batch.gaps)
    if book is None:
        return ParsedBatch(feed, batch.partition, batch.first_pos, batch.last_pos,
                           result.trades, result.quotes, [], dead, gaps, ledger)
    venue_dead = {i for i, _bad in result.invalid}
    dead += [DeadLetter(feed, messages[i][0], raw, why) for i, raw, why in book.invalid
             if i not in venue_dead]
    ledger.add_minutes(feed, level_minutes(book.columns), "parsed")
    return ParsedBatch(
        feed, batch.partition, batch.first_pos, batch.last_pos, result.trades, result.quotes,
        [], dead, gaps + book.gaps, ledger, books=book.columns,
    )
