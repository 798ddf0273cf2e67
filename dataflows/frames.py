"""What sources hand to the dataflow: micro-batches of raw messages, never one per item.

An exchange or MQTT source emits `(feed, MessageBatch)` items. Positions are the
source's own monotonically increasing message counter for the feed (per source
partition), so a batch of records can be named by the first and last position it came
from (the ClickHouse insert dedup token is built from them).
"""

from __future__ import annotations

from typing import NamedTuple


class Gap(NamedTuple):
    """A disconnect or a sequence gap a source saw (a row of ops.feed_gaps)."""

    feed: str
    venue: str
    gap_start: int  # µs since epoch, UTC
    gap_end: int
    kind: str  # "disconnect" or "sequence"
    reason: str
    missing: int = 0


class MessageBatch(NamedTuple):
    feed: str
    venue: str  # venue name for exchange feeds, "mqtt" for MQTT feeds
    partition: str  # source partition key (connection / subscriber client)
    first_pos: int  # position of messages[0]; messages[i] is at first_pos + i
    messages: list[tuple[int, str | bytes]]  # (received_ts µs, raw frame or payload)
    gaps: list[Gap]
    # MQTT only: (topic per message) and the ack handles the source keeps until commit.
    topics: list[str] | None = None

    @property
    def last_pos(self) -> int:
        return self.first_pos + len(self.messages) - 1
