"""The dedup window as a Bytewax step: `op.stateful_batch` keyed by feed.

One `DedupWindow` per feed; its snapshot is a handful of numpy array references (no deep
copy per epoch). Dropped repeats are counted in the batch's ledger delta by event minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from bytewax.operators import StatefulBatchLogic

from dataflows import metrics
from dataflows.books.live import frame_keys, frame_ts, level_minutes
from dataflows.dedup.spill import Spill
from dataflows.dedup.window import (
    DedupWindow,
    check_key_version,
    quote_keys,
    reading_keys,
    trade_keys,
)
from dataflows.parse.columns import Columns
from dataflows.parse.stage import ParsedBatch
from feedhouse.core.settings import FeedSettings
from feedhouse.store.ledger import LedgerDelta, minute_counts


def _ts(records, index: int) -> np.ndarray:
    if isinstance(records, Columns):
        return records.event_ts
    return np.fromiter((r[index] for r in records), dtype=np.int64, count=len(records))


def dedup_parsed(window: DedupWindow, parsed: ParsedBatch, reading_key: str = "seq") -> ParsedBatch:
    """Drop the batch's repeats; attach the key hashes of what is kept."""
    if parsed.books is not None and parsed.books.frames:
        parsed = _dedup_books(window, parsed)
    th = trade_keys(parsed.trades)
    qh = quote_keys(parsed.quotes)
    rh = reading_keys(parsed.readings, reading_key)
    if th.size + qh.size + rh.size == 0:
        return parsed
    hashes = np.concatenate([th, qh, rh])
    ts = np.concatenate([_ts(parsed.trades, 7), _ts(parsed.quotes, 7), _ts(parsed.readings, 5)])
    keep = window.filter(hashes, ts)
    if keep.all():
        return parsed._replace(hashes=(th, qh, rh))
    parsed.ledger.add_minutes(parsed.feed, minute_counts(ts[~keep]), "duplicates")
    cuts = np.cumsum([th.size, qh.size])
    k_t, k_q, k_r = np.split(keep, cuts)
    return parsed._replace(
        trades=_keep(parsed.trades, k_t),
        quotes=_keep(parsed.quotes, k_q),
        readings=_keep(parsed.readings, k_r),
        hashes=(th[k_t], qh[k_q], rh[k_r]),
    )


def _dedup_books(window: DedupWindow, parsed: ParsedBatch) -> ParsedBatch:
    """Book events seen before are dropped whole (one key per event: books/live.py)."""
    books = parsed.books
    keys = frame_keys(books)
    keep = window.filter(keys, frame_ts(books))
    if keep.all():
        return parsed._replace(book_keys=keys)
    parsed.ledger.add_minutes(parsed.feed, level_minutes(books, ~keep), "duplicates")
    return parsed._replace(books=books.take_frames(keep), book_keys=keys[keep])


def _keep(records, keep: np.ndarray):
    if isinstance(records, Columns):
        return records.take(keep)
    return [r for r, k in zip(records, keep, strict=True) if k]


def tick(feed: str) -> ParsedBatch:
    """An empty batch: wakes the feed's sink partition (age-based flush, replay probe,
    epoch snapshot) when the feed is quiet. Bytewax calls a sink only when items arrive."""
    return ParsedBatch(feed, "", 0, -1, [], [], [], [], [], LedgerDelta())


class DedupLogic(StatefulBatchLogic):
    """Per-feed logic; the feed's settings are looked up from the first batch it sees
    (Bytewax's builder gets only the resume state, not the key).

    It also paces the sink: `tick_s` after records passed (so a lone trade on a quiet
    feed is flushed after sink.batch_ms, not when the next one arrives) and every
    `idle_s` otherwise (replay probe and ledger flush keep running on an idle feed)."""

    def __init__(
        self,
        feeds: dict[str, FeedSettings],
        resume: dict | None,
        tick_s: float = 0.02,
        idle_s: float = 1.0,
        spill_dir: Path | None = None,
    ) -> None:
        self.feeds = feeds
        self.spill_dir = spill_dir  # large window levels go to files there (spill.py)
        self.spill: Spill | None = None
        self.window = None
        if resume:  # refused at once when hashed another way
            check_key_version(resume, "the recovery snapshot")
        self._resume = resume  # restored once the feed is known (it names the files)
        self.reading_key = "seq"
        self._configured = False
        self.feed: str | None = None
        self.tick_s = timedelta(seconds=tick_s)
        self.idle_s = timedelta(seconds=idle_s)
        self._next = datetime.now(UTC) + self.idle_s
        self._busy = False

    def _window_for(self, feed_name: str) -> DedupWindow:
        feed = self.feeds.get(feed_name)
        window_s = feed.dedup_window_s if feed else 600.0
        lateness_s = feed.allowed_lateness_s if feed else 5.0
        if feed is not None and feed.mqtt is not None:
            self.reading_key = feed.mqtt.dedup_key
            # the sink gathers an MQTT feed's rows for mqtt.flush_ms: wake it then
            self.tick_s = timedelta(milliseconds=feed.mqtt.flush_ms)
        if self.window is None:
            self.window = DedupWindow(window_s, lateness_s)
        else:  # settings may have changed since the snapshot: the current ones apply
            self.window.window_us = int(window_s * 1_000_000)
            self.window.lateness_us = int(lateness_s * 1_000_000)
        return self.window

    def on_batch(self, values: list[ParsedBatch]):
        if not self._configured:
            self.feed = values[0].feed
            if self.spill_dir is not None:
                self.spill = Spill(self.spill_dir, self.feed)
            if self._resume:
                self.window = DedupWindow.restore(self._resume, spill=self.spill)
                self._resume = None
            self._window_for(self.feed)
            self._configured = True
        window = self.window
        assert window is not None
        out = [dedup_parsed(window, p, self.reading_key) for p in values]
        metrics.set_dedup_keys(values[0].feed, len(window))
        if not self._busy and any(p.records for p in out):
            self._busy = True
            self._next = datetime.now(UTC) + self.tick_s
        return out, self.RETAIN

    def on_notify(self):
        self._next = datetime.now(UTC) + (self.tick_s if self._busy else self.idle_s)
        self._busy = False
        return ([tick(self.feed)] if self.feed else []), self.RETAIN

    def notify_at(self) -> datetime | None:
        return self._next

    def snapshot(self) -> dict | None:
        if self.window is None:
            return self._resume  # not configured yet: the state it was resumed with
        return self.window.snapshot(self.spill)
