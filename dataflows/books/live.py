"""Books on the live path: a feed's book frames -> BookColumns, its book state, its breaks.

A feed whose `channels` include `books` gets one `BookFeed` (dataflows/flow.py). The parse
step hands it every micro-batch after the venue adapter took the trades and quotes out:
each frame goes through the venue's book parser (parsers.BOOK_PARSERS), the batch's book
events become one `BookColumns` (numpy columns, no object per level), and the feed's
`Books` state follows every symbol in order. A sequence gap or a checksum mismatch
becomes an ops.feed_gaps row (reason "sequence gap: ..." / "checksum mismatch: ...") and
asks the feed's connection for a resync (`request_resync`: the WebSocket client
reconnects, and the venue sends a fresh snapshot on the new subscription); a disconnect
leaves every book of the feed unsynced until its next snapshot. Invalid book frames go to
the dead letter like invalid trade frames.

Dedup: one 64-bit key per book event (`frame_keys`: venue, symbol, time, ids, snapshot
flag, level count and the sums of its prices and sizes), so a redelivered frame is dropped
whole by the feed's dedup window and counted as `duplicates` per level, while the window
holds one key per event rather than one per level.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from xxhash import xxh3_64_intdigest

from dataflows.books.capture import _BAD_FRAME
from dataflows.books.columns import BookColumns, BookFrame
from dataflows.books.parsers import BOOK_PARSERS, book_parser
from dataflows.books.resync import request_resync
from dataflows.books.state import GAP, Books
from dataflows.frames import Gap
from dataflows.venues import VENUES, venue_at
from feedhouse.store.ledger import MINUTE_US

# BookFrame field positions (BookColumns.field_values)
VENUE, SYMBOL, EXCHANGE_TS, IS_SNAPSHOT, UPDATE_ID, PREV_UPDATE_ID = map(
    BookFrame._fields.index,
    ("venue", "symbol", "exchange_ts", "is_snapshot", "update_id", "prev_update_id"))


class BookBatch(NamedTuple):
    columns: BookColumns
    levels: list[int]  # level updates per message of the batch (0: no book data)
    invalid: list[tuple[int, str, str]]  # (message index, raw frame, reason)
    gaps: list[Gap]


def has_books(venue: str) -> bool:
    return venue in BOOK_PARSERS


class BookFeed:
    """The book channel of one configured feed: its parser and its books."""

    def __init__(self, feed: str, venue: str, key: str | None = None, only: bool = False) -> None:
        self.feed, self.venue = feed, venue
        self.only = only  # the feed subscribes books alone: its frames need no trade parse
        self.parse = book_parser(venue, key)
        self.books = Books(levels="checked")  # price levels only where a checksum needs them
        self.resyncs = 0
        self.proven = False  # its frames carried sequence ids or checksums

    def on_disconnect(self) -> None:
        """The connection dropped: updates were missed, every book waits for a snapshot."""
        self.books.disconnected()

    def apply(self, messages, reconnected_us: int | None = None) -> BookBatch:
        """`reconnected_us`: the batch saw a disconnect, and the feed connected again then
        (the disconnect gap's end): frames received before it belong to the old connection."""
        parse = self.parse
        frames: list[BookFrame] = []
        owner: list[int] = []  # message index of each frame
        invalid: list[tuple[int, str, str]] = []
        for i, (received_ts, raw) in enumerate(messages):
            try:
                found = parse(raw, received_ts)
            except _BAD_FRAME as exc:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                invalid.append((i, text, f"{self.venue} book: {exc.__class__.__name__}: "
                                         f"{str(exc)[:160]}"))
                continue
            if found:
                frames += found
                owner += [i] * len(found)
        levels = [0] * len(messages)
        if reconnected_us is not None and not frames:
            self.on_disconnect()
        gaps = self._lost(messages, invalid)
        if not frames:
            return BookBatch(BookColumns.of([]), levels, invalid, gaps)
        columns = BookColumns.of(frames)
        if columns.rejected:
            where = {id(f): owner[j] for j, f in enumerate(frames)}
            for frame, why in columns.rejected:
                i = where[id(frame)]
                invalid.append((i, _text(messages[i][1]), f"{self.venue} book: {why}"))
            kept_ids = {id(f) for f in columns.frames}
            owner = [owner[j] for j, f in enumerate(frames) if id(f) in kept_ids]
        if owner:  # level updates per message, summed over its frames in one numpy call
            levels = np.bincount(owner, weights=columns.levels_per_frame(),
                                 minlength=len(messages)).astype(np.int64).tolist()
        if not self.proven:
            self.proven = any(f.update_id or f.checksum is not None for f in columns.frames)
        breaks = self._follow(columns.frames, reconnected_us)
        for b in breaks:
            gaps.append(Gap(self.feed, self.venue, b.exchange_ts, b.exchange_ts,
                            "sequence" if b.reason == GAP else "checksum",
                            f"{b.reason}: {b.symbol} {b.detail}", b.missing))
        if breaks:
            self.resyncs += 1
            request_resync(self.feed)
        return BookBatch(columns, levels, invalid, gaps)

    def _follow(self, frames: list[BookFrame], reconnected_us: int | None):
        if reconnected_us is None:
            return self.books.apply(frames)
        cut = next((i for i, f in enumerate(frames) if f.received_ts >= reconnected_us),
                   len(frames))
        breaks = self.books.apply(frames[:cut])
        self.on_disconnect()
        return breaks + self.books.apply(frames[cut:])

    def _lost(self, messages, invalid: list) -> list[Gap]:
        """An invalid frame on a feed whose books carry no sequence id nor checksum (Coinbase
        level2, Bybit's legacy orderBookL2) may have been a lost book update that nothing
        else would reveal: every book of the feed waits for a snapshot (one gap row,
        symbol '*', and a resync)."""
        if not invalid or self.proven or not self.books.states:
            return []
        self.on_disconnect()
        self.resyncs += 1
        request_resync(self.feed)
        ts = messages[invalid[0][0]][0]
        return [Gap(self.feed, self.venue, ts, ts, "sequence",
                    f"{GAP}: * {len(invalid)} invalid frame(s) and no sequence ids: "
                    "every book waits for a snapshot", 0)]


def _text(raw: str | bytes) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", "replace")


def frame_keys(columns: BookColumns) -> np.ndarray:
    """One uint64 dedup key per book event of the batch (see the module's docstring):
    the event's fields and its levels' sums mixed with numpy (splitmix64 steps), the
    venue and symbol hashed once per distinct pair."""
    n = len(columns.frames)
    if not n:
        return np.empty(0, dtype=np.uint64)
    pairs = list(zip(columns.field_values(VENUE), columns.field_values(SYMBOL), strict=True))
    names = {pair: xxh3_64_intdigest(f"book\x1f{pair[0]}\x1f{pair[1]}".encode())
             for pair in set(pairs)}
    parts = [
        np.fromiter(map(names.__getitem__, pairs), dtype=np.uint64, count=n),
        frame_ts(columns).view(np.uint64),
        columns.frame_values(UPDATE_ID, np.uint64),
        columns.frame_values(PREV_UPDATE_ID, np.uint64) * np.uint64(2)
        + columns.frame_values(IS_SNAPSHOT, np.uint64),
        np.bincount(columns.frame, minlength=n).astype(np.uint64),
        np.bincount(columns.frame, weights=columns.price, minlength=n).view(np.uint64),
        np.bincount(columns.frame, weights=columns.native_amount, minlength=n).view(np.uint64),
    ]
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:
            h = _mix(h ^ part)
    return h


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise (uint64 arithmetic wraps)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def frame_ts(columns: BookColumns) -> np.ndarray:
    return columns.frame_values(EXCHANGE_TS, np.int64)


def level_minutes(columns: BookColumns, keep: np.ndarray | None = None) -> dict[int, int]:
    """{event minute (epoch s): level updates} of the batch (of its frames where `keep`)."""
    if not columns.frames:
        return {}
    counts = columns.levels_per_frame()
    minutes = (frame_ts(columns) // MINUTE_US) * 60
    if keep is not None:
        counts, minutes = counts[keep], minutes[keep]
    found, inverse = np.unique(minutes, return_inverse=True)
    sums = np.bincount(inverse, weights=counts, minlength=len(found))
    return {int(m): int(n) for m, n in zip(found, sums, strict=True) if n}


def book_feeds(feeds) -> dict[str, BookFeed]:
    """feed name -> BookFeed for the configured exchange feeds with the books channel."""
    out = {}
    for feed in feeds:
        if feed.kind == "exchange" and "books" in feed.channels and has_books(feed.venue):
            venue = VENUES[feed.venue]
            key = venue_at(venue, feed.url or venue.url).key
            only = not {"trades", "quotes"} & set(feed.channels)
            out[feed.name] = BookFeed(feed.name, feed.venue, key, only)
    return out
