"""How long an MQTT feed's sink partition gathers rows into one insert (issue 17).

An embedded chDB insert costs a mostly fixed ~10-16 ms of CPU, plus the merges of the part
it writes, so per message the inserts cost (inserts/s x that) / rate. `mqtt.flush_ms` (50)
keeps the latency at moderate rates (p99 <= 100 ms at 10k readings/s), but near the
ingest's capacity (30k/s on 2 shared cores) 20 inserts/s are CPU the ingest lacks. So the
window grows with the feed's rate: `flush_ms` up to `flush_grow_from` readings/s, then in
proportion (flush_ms x rate / flush_grow_from), up to `flush_max_ms`. With the defaults
(50 ms, 10k/s, 150 ms): 20 inserts/s up to 10k/s, 10 at 20k/s, ~7 from 30k/s. Measured
at 30k/s held and at 10k/s: docs/mqtt-performance.md.

The rate is the rows the partition handed over in the last span of >= 1 s, not one
window's: the backlog of a stall, read in a few fast windows, must not stretch the
next ones (its rows' latency is already the worst), and a feed back after a quiet
spell starts again at flush_ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from feedhouse.core.settings import MqttSettings


@dataclass
class GatherWindow:
    """The gather window (`seconds`) of one feed's sink partition, set from its rate."""

    base_s: float  # mqtt.flush_ms
    max_s: float  # mqtt.flush_max_ms (below base_s: no growth)
    grow_from: float  # readings/s (mqtt.flush_grow_from)
    span_s: float = 1.0
    seconds: float = field(init=False)
    _rows: int = field(default=0, init=False)
    _since: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.seconds = self.base_s

    @classmethod
    def of(cls, mqtt: MqttSettings) -> GatherWindow:
        return cls(mqtt.flush_ms / 1000.0, mqtt.flush_max_ms / 1000.0, mqtt.flush_grow_from)

    @property
    def cap_s(self) -> float:
        return max(self.base_s, self.max_s)

    def handed_over(self, rows: int, now: float) -> None:
        """`rows` went to the committer at `now` (time.monotonic()): once a span has
        passed, its rate sets the window."""
        if self._since is None:  # the first hand-over starts the first span
            self._since = now
            return
        self._rows += rows
        elapsed = now - self._since
        if elapsed < self.span_s:
            return
        rate = self._rows / elapsed
        self.seconds = min(self.cap_s, max(self.base_s, self.base_s * rate / self.grow_from))
        self._rows, self._since = 0, now
