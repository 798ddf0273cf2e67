"""A book per symbol: price levels per side, snapshots and updates applied in order, the
venue's sequence continuity and checksum proven, and a break reported.

The book is synced after a snapshot. An update whose `prev_update_id` is not the last
applied `update_id` is a "sequence gap"; a book whose checksum differs from the one the
venue sent is a "checksum mismatch". Either marks the book unsynced: its levels are not
updated again until the next snapshot (a live feed resubscribes or fetches one), and the
break is returned as a `BookBreak` (a row for ops.feed_gaps). Sequence ids are still
followed while unsynced, so every gap is counted, also on a venue whose snapshots come
from REST (Binance) before the first one arrives.

A REST snapshot (Binance, `REST_SNAPSHOTS`) arrives beside the stream, often after updates
newer than it: the book remembers where its unbroken chain of updates started (`_chain`,
the first one's previous id). A snapshot at id L syncs the book when L is not older than
that start: updates with id <= L are in it, the later ones (already followed) continue it
(Binance: the first applied event has U <= L+1 <= u, futures pu <= L < u), and their
levels, kept meanwhile where levels are kept, are applied on top. A snapshot older than the
chain's start leaves the updates between unknown: a sequence gap, still unsynced.

Levels are kept as the venue's text (the checksum is over the text), keyed by float price.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import NamedTuple

from dataflows.books.checksum import CHECKSUMS
from dataflows.books.columns import BookFrame
from dataflows.venues.kraken import BOOK_DEPTH as KRAKEN_DEPTH

GAP, MISMATCH = "sequence gap", "checksum mismatch"
# venues whose snapshot comes from REST, beside the stream (dataflows/sources/depth_rest.py)
REST_SNAPSHOTS = frozenset({"binance", "binance_us", "binance_futures", "binance_delivery"})
PENDING = 5000  # updates kept per unsynced book (levels kept only) for its REST snapshot
# venues that keep a book at the subscribed depth and send no removal for a level that
# falls out of it: the book is truncated to that depth after every event (else levels the
# venue dropped would linger and, once the top thins out, enter the checksum's levels)
KEPT_DEPTH = {"kraken": KRAKEN_DEPTH}


class BookBreak(NamedTuple):
    venue: str
    symbol: str
    exchange_ts: int  # µs, of the frame that showed the break
    reason: str  # GAP or MISMATCH
    detail: str
    missing: int  # update ids known missing (sequence gaps), else 0


class BookState:
    def __init__(self, venue: str, symbol: str, depth: int | None = None,
                 levels: bool | str = True) -> None:
        self.venue, self.symbol, self.depth = venue, symbol, depth or KEPT_DEPTH.get(venue)
        self.bids: dict[float, tuple[str, str]] = {}
        self.asks: dict[float, tuple[str, str]] = {}
        self._bid_keys: list[float] = []  # the sides' prices, ascending (bisect-maintained)
        self._ask_keys: list[float] = []
        self.synced = False
        self.last_id = 0
        self._fresh = False  # next update is the first after a snapshot (may overlap it)
        self._chain = 0  # previous id of the first update of the unbroken chain followed
        self.rest = venue in REST_SNAPSHOTS
        self._pending: deque[BookFrame] = deque()  # the chain's updates (REST venues, levels)
        self.checksum = CHECKSUMS.get(venue)
        self.checked = self.passed = self.stale = 0
        # levels=False (or "checked" on a venue without a checksum): follow the sequence
        # only, keep no price level (the live path: ClickHouse rebuilds books, book_at)
        self.keep = levels is True or (levels == "checked" and self.checksum is not None)

    # --- reading the book -------------------------------------------------------------
    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best n (price, size) per side: bids high to low, asks low to high."""
        bids = self._bid_keys[: -n - 1 : -1] if n else []
        asks = self._ask_keys[:n]
        return ([(p, float(self.bids[p][1])) for p in bids],
                [(p, float(self.asks[p][1])) for p in asks])

    def computed_checksum(self) -> int | None:
        if self.checksum is None:
            return None
        n, fn = self.checksum
        bids, asks = self.bids, self.asks
        return fn([bids[p] for p in self._bid_keys[: -n - 1 : -1]],
                  [asks[p] for p in self._ask_keys[:n]])

    def crossed(self) -> bool:
        return bool(self._bid_keys and self._ask_keys and self._bid_keys[-1] >= self._ask_keys[0])

    # --- applying events --------------------------------------------------------------
    def apply(self, frame: BookFrame) -> BookBreak | None:
        if frame.is_snapshot:
            self.bids, self.asks, self._bid_keys, self._ask_keys = {}, {}, [], []
            if self.keep:
                self._set(self.bids, self._bid_keys, frame.bids)
                self._set(self.asks, self._ask_keys, frame.asks)
            self.synced, self._fresh = True, True
            if self.rest and frame.update_id < self.last_id:
                return self._catch_up(frame)
            if self.depth:
                self._truncate()
            self.last_id = frame.update_id
            self._pending.clear()
            return self._verify(frame)
        found = self._follow(frame)
        if found == "stale":
            return None
        if self.synced and self.keep:
            self._levels(frame)
        if found is not None:
            self.synced = False
        if self.rest and self.keep:
            self._keep_pending(frame, found is not None)
        return found if found is not None else self._verify(frame)  # type: ignore[return-value]

    def disconnected(self) -> None:
        """The connection dropped: unsynced until a snapshot; the next connection's
        updates start a new chain (no gap against the last connection's ids)."""
        self.synced, self.last_id, self._chain = False, 0, 0
        self._pending.clear()

    def _catch_up(self, frame: BookFrame) -> BookBreak | None:
        """A REST snapshot older than the updates followed since: in sync when the chain
        reaches back to it (see the module's docstring), else a gap."""
        last = frame.update_id
        if self._chain > last:
            self.synced = False
            return BookBreak(self.venue, self.symbol, frame.exchange_ts, GAP,
                             f"snapshot {last} is older than the updates since {self._chain}",
                             self._chain - last)
        self._fresh = False
        for kept in self._pending:
            if kept.update_id > last:
                self._levels(kept)
        if self.depth:
            self._truncate()
        return None

    def _keep_pending(self, frame: BookFrame, broke: bool) -> None:
        pending = self._pending
        if broke:
            pending.clear()
        pending.append(frame)
        if len(pending) > PENDING:  # the chain kept starts later
            pending.popleft()
            self._chain = pending[0].prev_update_id

    def _levels(self, frame: BookFrame) -> None:
        self._set(self.bids, self._bid_keys, frame.bids)
        self._set(self.asks, self._ask_keys, frame.asks)
        if self.depth:
            self._truncate()

    def _follow(self, frame: BookFrame) -> BookBreak | str | None:
        """Sequence continuity: 'stale' (already in the snapshot), a BookBreak, or None."""
        uid, prev = frame.update_id, frame.prev_update_id
        if not uid:
            return None
        last, fresh = self.last_id, self._fresh
        if last and uid <= last:  # before the snapshot's id: already in it (Binance)
            self.stale += 1
            return "stale"
        self.last_id, self._fresh = uid, False
        if not last or not prev:
            self._chain = prev  # a chain starts
            return None
        if fresh and self.synced and prev <= last:  # first update may overlap the snapshot
            return None
        if prev == last:
            return None
        self._chain = prev  # a new chain starts at this update
        missing = max(prev - last, 0)
        return BookBreak(self.venue, self.symbol, frame.exchange_ts, GAP,
                         f"update {prev} follows {last}", missing)

    def _verify(self, frame: BookFrame) -> BookBreak | None:
        if frame.checksum is None or self.checksum is None or not self.synced:
            return None
        self.checked += 1
        mine = self.computed_checksum()
        if mine == frame.checksum:
            self.passed += 1
            return None
        self.synced = False
        return BookBreak(self.venue, self.symbol, frame.exchange_ts, MISMATCH,
                         f"venue {frame.checksum} != book {mine}", 0)

    @staticmethod
    def _set(side: dict, keys: list[float], levels: list) -> None:
        for level in levels:
            price, size = level[0], level[1]
            key = float(price)
            if float(size) == 0.0:
                if side.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if key not in side:
                    insort(keys, key)
                side[key] = (price, size)

    def _truncate(self) -> None:
        depth = self.depth or 0
        for price in self._bid_keys[:-depth]:  # the worst bids are the lowest
            del self.bids[price]
        del self._bid_keys[:-depth]
        for price in self._ask_keys[depth:]:
            del self.asks[price]
        del self._ask_keys[depth:]


class Books:
    """One BookState per (venue, symbol); `apply` returns the breaks a batch showed."""

    def __init__(self, depth: int | None = None, levels: bool | str = True) -> None:
        self.depth, self.levels = depth, levels
        self.states: dict[tuple[str, str], BookState] = {}

    def state(self, venue: str, symbol: str) -> BookState:
        key = (venue, symbol)
        found = self.states.get(key)
        if found is None:
            found = self.states[key] = BookState(venue, symbol, self.depth, self.levels)
        return found

    def disconnected(self) -> None:
        for state in self.states.values():
            state.disconnected()

    def apply(self, frames: list[BookFrame]) -> list[BookBreak]:
        breaks = []
        for frame in frames:
            found = self.state(frame.venue, frame.symbol).apply(frame)
            if found is not None:
                breaks.append(found)
        return breaks
