"""Running totals of this process's sink, for the live status, the stop summary and
benchmarks (read from other threads; reset at the start of each run)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from dataflows import metrics
from dataflows.sink.batches import EVENT_COLUMN
from feedhouse.store.ledger import COUNTERS, LedgerDelta


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

class LatencySample:
    """receive -> insert acked latencies (µs) of directly inserted rows, for benchmarks.
    Off (cap 0) unless a benchmark sets `cap`: kept for a whole run it held 8 MB of
    arrays nobody read."""

    def __init__(self, cap: int = 0) -> None:
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
