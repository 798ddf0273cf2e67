"""Bytewax source for exchange feeds: one partition per feed, items are micro-batches.

Each partition runs its feed's client (`ws_picows.FeedClient` on uvloop by default;
`feeds[].ws_client: websockets` picks the former client) in a thread of its own and hands Bytewax `MessageBatch` items: every `next_batch()` returns at most one
batch holding all frames that arrived since the last call (up to `batch_frames`), with
their receive times, plus the gaps seen meanwhile. Between the thread and Bytewax sits a
bounded queue: when the dataflow is slower than the feed, the client stops reading the
socket (TCP pushes back on the server) instead of growing memory.

State is the position of the next frame (a per-feed frame counter). On resume the client
asks the replay server for `?from=<position>`, so replayed feeds recover exactly; for
live venues the position just keeps counting. Frames the client injects (REST depth
snapshots, depth_rest.py) take positions too but were never sent by the server: the state
is then `(position, injected so far)` and the client resumes at the difference.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import deque
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from dataflows import metrics
from dataflows.frames import Gap, MessageBatch
from dataflows.sources.depth_rest import depth_snapshots
from dataflows.sources.websocket import BaseFeedClient, new_event_loop
from dataflows.sources.ws_picows import FeedClient
from dataflows.sources.ws_websockets import WebsocketsFeedClient
from dataflows.venues import get_venue, venue_at
from dataflows.venues.instruments import refresh, set_cache_dir
from feedhouse.core.settings import FeedSettings, Settings

log = logging.getLogger(__name__)

BATCH_FRAMES = 5000
QUEUE_FRAMES = 100_000
QUEUE_BYTES = 16 * 1024 * 1024  # frames are 0.1-2 KB: bytes, not frames, bound the memory
IDLE_WAKE = timedelta(milliseconds=5)
CLIENTS: dict[str, type[BaseFeedClient]] = {
    "picows": FeedClient, "websockets": WebsocketsFeedClient}


_QUEUES: weakref.WeakSet = weakref.WeakSet()


def queued_bytes() -> dict[str, int]:
    """{feed: bytes of frames waiting in its queue} (the ingest's footprint: a feed that
    falls behind holds up to feeds[].queue_mb)."""
    out: dict[str, int] = {}
    for q in list(_QUEUES):
        out[q.feed] = out.get(q.feed, 0) + max(0, q.bytes_in - q.bytes_out)
    return out


class FrameQueue:
    """Bounded hand-over from the client's asyncio thread to the Bytewax thread.

    deque append/popleft are atomic in CPython, so no lock on the hot path; the producer
    polls for space with a short timeout when full, which only happens under backpressure.
    """

    def __init__(self, capacity: int = QUEUE_FRAMES, feed: str = "",
                 max_bytes: int = QUEUE_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.feed = feed
        self.frames: deque[tuple[int, str | bytes]] = deque()
        self.gaps: deque[Gap] = deque()
        self.injected: deque[str | bytes] = deque()  # frames put by `inject`, in order
        self.injected_out = 0  # of them, taken so far
        self.closed = False
        # each side counts only its own (no lock): held = what went in - what came out
        self.bytes_in = 0
        self.bytes_out = 0
        _QUEUES.add(self)

    @property
    def full(self) -> bool:
        return (len(self.frames) >= self.capacity
                or self.bytes_in - self.bytes_out >= self.max_bytes)

    def put(self, received_us: int, frame: str | bytes) -> bool:
        self.frames.append((received_us, frame))
        self.bytes_in += len(frame)
        return not self.full

    def inject(self, received_us: int, frame: str | bytes) -> bool:
        """A frame the client made (not received from the server: no server position)."""
        self.injected.append(frame)
        return self.put(received_us, frame)

    async def wait_space(self) -> None:
        last = time.monotonic()
        while self.full and not self.closed:
            await asyncio.sleep(0.002)
            now = time.monotonic()  # counted as it goes: a drill samples long pauses
            metrics.count(self.feed, "source_paused_us", int((now - last) * 1e6))
            last = now

    def gap(self, gap: Gap) -> None:
        self.gaps.append(gap)

    def take(self, limit: int) -> tuple[list[tuple[int, str | bytes]], list[Gap]]:
        frames = self.frames
        n = min(limit, len(frames))
        out = [frames.popleft() for _ in range(n)]
        self.bytes_out += sum(len(f) for _, f in out)
        if self.injected:  # rare: count the injected frames taken (same objects)
            injected = self.injected
            for _ts, frame in out:
                if injected and frame is injected[0]:
                    injected.popleft()
                    self.injected_out += 1
        gaps = [self.gaps.popleft() for _ in range(len(self.gaps))]
        return out, gaps


class FeedPartition(StatefulSourcePartition[MessageBatch, int | tuple[int, int]]):
    """One feed: the client thread plus the queue it fills."""

    def __init__(
        self,
        feed: FeedSettings,
        start_pos: int | tuple[int, int],
        batch_frames: int = BATCH_FRAMES,
        queue_frames: int = QUEUE_FRAMES,
        stop_at_end: bool = True,
    ) -> None:
        self.feed = feed
        venue = get_venue(feed.venue or "")
        self.venue = venue_at(venue, feed.url or venue.url)  # the endpoint's variant
        self.queue = FrameQueue(queue_frames, feed.name, int(feed.queue_mb * 1024 * 1024))
        self.batch_frames = batch_frames
        start_pos, self.injected = start_pos if isinstance(start_pos, tuple) else (start_pos, 0)
        self._injected_before = self.injected  # by earlier runs
        self.pos = start_pos  # position of the next frame handed to Bytewax
        self.client = CLIENTS[feed.ws_client](
            feed, self.venue, self.queue, start_pos - self.injected, stop_at_end)
        self.client.depth = depth_snapshots(feed, self.venue)
        self._thread = threading.Thread(
            target=self._run, name=f"feed-{feed.name}", daemon=True
        )
        self._thread.start()
        # Bytewax does not call close() when a dataflow aborts: stop the client thread
        # once the partition is gone instead of leaving it connected.
        self._finalizer = weakref.finalize(self, _shutdown, self.client, self.queue)

    def _run(self) -> None:
        venue = self.venue
        if venue.catalog is not None:  # live: the venue's instrument list, fresh
            refresh(venue.catalog, self.feed.url or venue.url, venue.hosts)
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(self.client.run())
        except Exception:  # the client catches its own failures; this is a last resort
            log.exception("feed %s: client thread died", self.feed.name)

    def next_batch(self) -> list[MessageBatch]:
        frames, gaps = self.queue.take(self.batch_frames)
        if not frames and not gaps:
            done = self.client.finished or not self._thread.is_alive()
            if done and not self.queue.frames and not self.queue.gaps:
                raise StopIteration  # end of a finite replay (or stopped)
            return []
        batch = MessageBatch(
            self.feed.name, self.venue.key, self.feed.name, self.pos, frames, gaps
        )
        self.pos += len(frames)
        self.injected = self.queue.injected_out + self._injected_before
        return [batch]

    def next_awake(self) -> datetime | None:
        if self.queue.frames or self.queue.gaps:
            return None
        return datetime.now(UTC) + IDLE_WAKE

    def snapshot(self) -> int | tuple[int, int]:
        return (self.pos, self.injected) if self.injected else self.pos

    def close(self) -> None:
        self._finalizer()
        self._thread.join(timeout=5)


def _shutdown(client: BaseFeedClient, queue: FrameQueue) -> None:
    client.stop()
    queue.closed = True


class ExchangeSource(FixedPartitionedSource[MessageBatch, int | tuple[int, int]]):
    """All exchange feeds of a dataflow; partition key = feed name.

    `stop_at_end`: a partition ends when the replay server says its (non-looping)
    capture is over, so tests and drills over finite captures terminate.
    """

    def __init__(
        self,
        feeds: list[FeedSettings],
        settings: Settings | None = None,
        *,
        batch_frames: int = BATCH_FRAMES,
        queue_frames: int = QUEUE_FRAMES,
        stop_at_end: bool = True,
    ) -> None:
        self.feeds = {f.name: f for f in feeds if f.kind == "exchange"}
        self.settings = settings
        if settings is not None and settings.instruments_dir is not None:
            set_cache_dir(settings.instruments_dir)
        self.batch_frames = batch_frames
        self.queue_frames = queue_frames
        self.stop_at_end = stop_at_end

    def list_parts(self) -> list[str]:
        return list(self.feeds)

    def build_part(
        self, step_id: str, for_part: str, resume_state: int | tuple[int, int] | None
    ) -> FeedPartition:
        return FeedPartition(
            self.feeds[for_part],
            resume_state or 0,
            self.batch_frames,
            self.feeds[for_part].queue_frames or self.queue_frames,
            self.stop_at_end,
        )
