"""BitMEX L2 books: levels keyed by `id`, and no sequence id of BitMEX's own.

A book's ids map to their prices (an `update`/`delete` row may carry none); feedhouse numbers
the book's events so BookState follows them like a venue's sequence: an update or delete of
an id never inserted skips a number, i.e. a sequence gap.
"""

from __future__ import annotations

from dataflows.venues.common import FrameError


class LevelIds:
    """One BitMEX L2 book's id -> price map and feedhouse's event number. BitMEX's update
    and delete rows may carry no price (the id's `insert`/`partial` gave it); an id not in
    the map means a missed insert: the event skips a number (`prev` != last `update_id`),
    which BookState reports as a sequence gap (unsynced, ops.feed_gaps, resubscribe)."""

    __slots__ = ("number", "prices")

    def __init__(self) -> None:
        self.number, self.prices = 0, {}

    def event(self, action: str, rows: list) -> tuple[list, list, int, int]:
        """(bids, asks, update_id, prev_update_id) of one message's rows of this book."""
        prices = self.prices
        if action == "partial":
            prices.clear()
        bids, asks, lost = [], [], False
        for row in rows:
            ident, side = row["id"], row["side"]
            if side not in _SIDES:
                raise FrameError(f"bad side {side!r}")
            price = row.get("price")
            if action == "update" or action == "delete":
                known = prices.pop(ident, None) if action == "delete" else prices.get(ident)
                if known is None:  # an id never inserted (or gone): an update was lost
                    lost = True
                price = known if price is None else price
            if price is None:
                continue  # nothing to price the level at (the book resyncs)
            if action != "delete":
                prices[ident] = price
            size = 0 if action == "delete" else row["size"]
            (bids if side == "Buy" else asks).append([price, size])
        self.number += 2 if lost else 1
        prev = 0 if action == "partial" else self.number - 1
        return bids, asks, self.number, prev


_SIDES = frozenset({"Buy", "Sell"})
