"""Gap detection, generic: a venue declares its sequence check (`Venue.sequence_of`, made
with dataflows.venues.declare.sequence_check in the venue's module), which names the
(stream, number) pairs a raw frame carries; within a stream, numbers must rise by exactly
one, and a jump is a `sequence` gap. SequenceTracker remembers the numbers per stream.
"""

from __future__ import annotations

from collections.abc import Callable

from dataflows.venues.base import Frame, Venue

SequenceFn = Callable[[Frame], list[tuple[str, int]]]


def sequence_fn(venue: Venue) -> SequenceFn | None:
    """The venue's own gap check (None: it declares none)."""
    return venue.sequence_of


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
