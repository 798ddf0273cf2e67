"""Sequence numbers a venue lets a client check, per stream: a jump is a `sequence` gap.

Each function takes a raw frame and returns the (stream, number) pairs it carries; within
a stream, numbers must rise by exactly one. They decode only frames that can carry a
number (a cheap substring test first), so checking costs little on the hot path.

- Binance: aggTrade ids `a` are consecutive per symbol.
- Coinbase: `sequence` counts every message of a product on every channel, so on the
  `matches`/`ticker` channels it jumps by design; `trade_id` of match/last_match is
  consecutive per product instead, and that is what is checked.

A venue adapter may set `Venue.sequence_of` itself; it wins over these defaults.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from dataflows.venues.base import Frame, Venue

SequenceFn = Callable[[Frame], list[tuple[str, int]]]


def binance(frame: Frame) -> list[tuple[str, int]]:
    if "aggTrade" not in frame if isinstance(frame, str) else b"aggTrade" not in frame:
        return []
    try:
        msg = orjson.loads(frame)
        data = msg.get("data", msg)
        if data.get("e") == "aggTrade":
            return [(data["s"], int(data["a"]))]
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        pass  # the parser reports the frame as invalid
    return []


def coinbase(frame: Frame) -> list[tuple[str, int]]:
    if "match" not in frame if isinstance(frame, str) else b"match" not in frame:
        return []
    try:
        msg = orjson.loads(frame)
        if msg.get("type") in ("match", "last_match"):
            return [(msg["product_id"], int(msg["trade_id"]))]
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        pass
    return []


_DEFAULTS: dict[str, SequenceFn] = {"coinbase": coinbase}


def sequence_fn(venue: Venue) -> SequenceFn | None:
    """The gap check for a venue: its own hook, else a default by venue family."""
    if venue.sequence_of is not None:
        return venue.sequence_of
    if venue.name.startswith("binance"):
        return binance
    return _DEFAULTS.get(venue.name)


class SequenceTracker:
    """Remembers the last number per stream; reports how many were skipped."""

    __slots__ = ("fn", "last")

    def __init__(self, fn: SequenceFn) -> None:
        self.fn = fn
        self.last: dict[str, int] = {}

    def reset(self) -> None:
        """After a reconnect the disconnect gap covers the loss; start afresh."""
        self.last.clear()

    def check(self, frame: Frame) -> list[tuple[str, int, int]]:
        """(stream, expected, got) for every jump forward in this frame."""
        jumps = []
        for stream, number in self.fn(frame):
            if stream.__class__ is not str or not 0 <= number < 2**63:
                continue  # a garbled frame (its parse reports it): no stream, no jump
            last = self.last.get(stream)
            if last is not None and number > last + 1:
                jumps.append((stream, last + 1, number))
            if last is None or number > last:
                self.last[stream] = number
        return jumps
