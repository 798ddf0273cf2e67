"""The WebSocket client of one exchange feed: connection logic only, no parsing.

This module holds what every connection library shares (`BaseFeedClient`); the library
code is a subclass: `ws_picows.FeedClient` (picows, the default: about a quarter of the
CPU per frame) and `ws_websockets.WebsocketsFeedClient` (the websockets library, kept as
a fallback, `feeds[].ws_client: websockets`). One client per feed runs in its own asyncio loop (the Bytewax source gives each
feed its own thread), so one venue failing or stalling never holds up another. The client

- connects to the feed's URL (or `venue.url_for` when the subscription lives in the URL),
  sends `venue.subscribe` frames after every (re)connect, answers the venue's ping frames
  and sends `venue.ping_frame` every `venue.ping_interval_s`;
- reconnects with exponential backoff and jitter, capped (`reconnect_initial_s` ..
  `reconnect_max_s`), and when no frame arrived for `stale_s`;
- reports every disconnect as a `Gap(kind="disconnect")` and every jump in a sequence the
  venue lets us see as a `Gap(kind="sequence", missing=N)`;
- records every frame received and sent with `CaptureWriter` when `record_dir` is set;
- with `depth` (a `depth_rest.DepthSnapshots`, set by the source for Binance books):
  fetches REST depth snapshots after every connect and on a book's resync request (the
  stream goes on), and injects them into the sink as frames;
- hands each frame with its receive time (µs) to a `FrameSink`, which may push back.

Positions: the client numbers the frames it receives (`next_pos`). Against the replay
server (which answers with the `X-Feedhouse-Replay` header) it reconnects asking for
`?from=<next_pos>`, so a reconnect or a restart resumes exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Protocol
from urllib.parse import urlsplit

from dataflows import metrics
from dataflows.books.resync import take_resync
from dataflows.frames import Gap
from dataflows.sources.capture import CaptureWriter
from dataflows.sources.sequence import SequenceTracker, sequence_fn
from dataflows.venues.base import Venue
from feedhouse.core.settings import FeedSettings

log = logging.getLogger(__name__)

REPLAY_HEADER = "X-Feedhouse-Replay"
END_OF_STREAM = 4000  # close code of the replay server when a finite capture is over
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_FRAME_BYTES = 16 * 2**20
# protocol pings (both libraries): one after this long, the connection dropped when no
# pong came this long after it
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 20.0
OPEN_TIMEOUT_S = 10.0
# picows over aiofastnet's transports (its default) rather than the loop's own: measured
# 3.8 vs 4.1-4.9 µs per frame for the client at 10k frames/s (docs/performance.md)
USE_AIOFASTNET = True


class FrameSink(Protocol):
    def put(self, received_us: int, frame: str | bytes) -> bool:
        """Take a frame; False when full (the client then awaits `wait_space`)."""

    async def wait_space(self) -> None: ...

    def gap(self, gap: Gap) -> None: ...


def now_us() -> int:
    return time.time_ns() // 1000


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (less CPU per read, write and timer than asyncio's loop)."""
    try:
        import uvloop  # deferred: optional speed-up, not on every platform
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def with_query(url: str, key: str, value: object) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}{key}={value}"


class Backoff:
    """Exponential backoff with jitter: attempt n waits initial*2^n, capped, times U(0.5,1)."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None):
        self.initial_s = initial_s
        self.max_s = max(max_s, initial_s)
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        cap = min(self.max_s, self.initial_s * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return cap * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


class _Disconnect(Exception):
    """Ends a connection with a reason; `since` is when the data stopped (µs)."""

    def __init__(self, reason: str, since: int | None = None) -> None:
        super().__init__(reason)
        self.since = since if since is not None else now_us()


class BaseFeedClient:
    """Connects one feed and keeps it connected until `stop()` or the end of a replay.

    A subclass implements `_connection()` (one connection, until it ends) with its
    library and calls the shared steps: `_opened()` once the handshake is done,
    `_subscribe_frames()`, `_frame()` per received frame, `_closed()` at the end."""

    def __init__(
        self,
        feed: FeedSettings,
        venue: Venue,
        sink: FrameSink,
        start_pos: int = 0,
        stop_at_end: bool = True,
    ) -> None:
        self.feed = feed
        self.venue = venue
        self.sink = sink
        self.next_pos = start_pos
        self.stop_at_end = stop_at_end
        self.base_url = self._base_url()
        # The replay server can resume at a position; live venues cannot.
        self.resumable = (urlsplit(self.base_url).hostname or "") in _LOOPBACK
        seq = sequence_fn(venue)
        self._seq = SequenceTracker(seq) if seq is not None else None
        self._writer = CaptureWriter(feed.record_dir, feed.name) if feed.record_dir else None
        self._backoff = Backoff(feed.reconnect_initial_s, feed.reconnect_max_s)
        self._down: tuple[int, str] | None = None  # (since µs, reason) while disconnected
        self._failed = 0  # reconnect attempts that failed during the current outage
        self._stale_reason: str | None = None
        self._blocked = False  # waiting for the sink: not stale
        self._last_rx = 0  # µs of the last frame (or of the connect, or of the unblock)
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.finished = False  # the replay server said the capture is over
        self.depth = None  # depth_rest.DepthSnapshots: REST book snapshots to inject
        self._depth_task: asyncio.Task | None = None
        self._depth_next = 0.0  # monotonic: a resync's fetch round starts no earlier
        self._frames_at_open = 0
        self.stats = {"connects": 0, "disconnects": 0, "frames": 0, "sequence_gaps": 0}

    # -- URL ---------------------------------------------------------------------------

    def _base_url(self) -> str:
        url = self.feed.url or self.venue.url
        if self.venue.url_for is not None:
            url = self.venue.url_for(url, self.feed.symbols, self.feed.channels)
        return url

    def url(self) -> str:
        if self.resumable and self.next_pos > 0:
            return with_query(self.base_url, "from", self.next_pos)
        return self.base_url

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the client to stop; safe from any thread."""
        self._stopping = True
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._stop_event is not None:
            loop.call_soon_threadsafe(self._stop_event.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stopping:
            return
        try:
            while not self._stopping and not self.finished:
                before = self.next_pos
                try:
                    await self._connection()
                except _Disconnect as exc:
                    if str(exc) == "resume":
                        continue  # the replay server can resume: reconnect with ?from=
                    self._went_down(exc.since, str(exc))
                except Exception as exc:  # noqa: BLE001 - any failure means reconnect
                    self._went_down(now_us(), f"{type(exc).__name__}: {exc}"[:300])
                if self.finished or self._stopping:
                    break
                if self.next_pos > before:
                    self._backoff.reset()  # that connection worked: start backoff afresh
                delay = self._backoff.next_delay()
                # the host too: "gaierror: Name or service not known" alone names none
                host = urlsplit(self.base_url).netloc.rpartition("@")[2]
                log.warning("feed %s (%s): %s; reconnecting in %.2fs", self.feed.name, host,
                            self._down[1] if self._down else "", delay)
                await self._sleep(delay)
        finally:
            task = self._depth_task
            if task is not None and not task.done():
                if self.finished and not self._stopping:  # the replay ended: deliver it
                    await asyncio.wait((task,))
                task.cancel()
            if self._writer is not None:
                self._writer.close()

    async def _connection(self) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    def _went_down(self, since: int, reason: str) -> None:
        metrics.set_connected(self.feed.name, False)
        if self._depth_task is not None:  # its snapshots would belong to the old stream
            self._depth_task.cancel()
        if self._down is None:
            self.stats["disconnects"] += 1
            self._down, self._failed = (since, reason), 0
        else:
            self._failed += 1

    async def _sleep(self, seconds: float) -> None:
        assert self._stop_event is not None
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            pass

    # -- the steps of one connection ---------------------------------------------------

    def _opened(self, url: str, replay_header: str | None) -> bool:
        """The handshake is done: count it, report the outage as a gap, start recording.
        False: the server turned out to be the replay server and we must reconnect
        asking for `?from=` (the caller closes and raises `_Disconnect("resume")`)."""
        connected = now_us()
        if replay_header and not self.resumable:
            self.resumable = True
            if self.next_pos > 0:
                return False
        self._last_rx = connected
        self.stats["connects"] += 1
        metrics.set_connected(self.feed.name, True)
        if self.stats["connects"] > 1:
            metrics.count(self.feed.name, "reconnects")
        if self._seq is not None:
            self._seq.reset()
        if self._down is not None:
            since, reason = self._down
            if self._failed:
                reason += f" ({self._failed} failed reconnects)"
            self.sink.gap(Gap(self.feed.name, self.venue.name, since, connected,
                              "disconnect", reason))
            self._down = None
        if self._writer is not None:
            self._writer.connected(url, connected / 1e6)
        self._frames_at_open = self.stats["frames"]
        self._snapshot_round()
        return True

    def _snapshot_round(self, resync: bool = False) -> None:
        """Fetch and inject the feed's REST depth snapshots (a new round replaces one
        under way); a resync's round starts `resync_spacing_s` after the last one at the
        earliest."""
        depth = self.depth
        if depth is None:
            return
        if self._depth_task is not None:
            self._depth_task.cancel()
        now = time.monotonic()
        delay = max(0.0, self._depth_next - now) if resync else 0.0
        self._depth_next = now + delay + depth.resync_spacing_s
        record = self._writer.received if self._writer is not None else None
        self._depth_task = asyncio.ensure_future(depth.run(
            self.sink, record, lambda: self.stats["frames"] - self._frames_at_open, delay))
        self._depth_task.add_done_callback(self._round_done)

    def _round_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("feed %s: depth snapshots failed", self.feed.name,
                      exc_info=task.exception())

    def _subscribe_frames(self) -> list[str | bytes]:
        return list(self.venue.subscribe(self.feed.symbols, self.feed.channels))

    def _recorded_sent(self, frame: str | bytes) -> None:
        if self._writer is not None:
            text = frame if isinstance(frame, str) else repr(frame)
            self._writer.sent(text, time.time())

    def _frame(self, frame: str | bytes) -> tuple[int, str | bytes | None]:
        """One received frame: sequence check, recording, position. Returns its receive
        time (µs) and the venue's answer to send (an application-level pong) or None."""
        ts = now_us()
        prev, self._last_rx = self._last_rx, ts
        answer = self.venue.answer_ping
        reply = answer(frame) if answer is not None else None
        seq = self._seq
        if seq is not None:
            for stream, expected, got in seq.check(frame):
                self.stats["sequence_gaps"] += 1
                # the missing numbers fell between the previous frame and this one
                self.sink.gap(Gap(self.feed.name, self.venue.name, prev, ts, "sequence",
                                  f"{stream}: expected {expected}, got {got}", got - expected))
        if self._writer is not None:
            self._writer.received(frame, ts / 1e6)
        self.next_pos += 1
        self.stats["frames"] += 1
        return ts, reply

    def _is_stale(self) -> bool:
        """Checked by the watchdog: flushes the recording now and then, too."""
        if self._writer is not None:
            self._writer.flush()
        if take_resync(self.feed.name):  # a book broke: a fresh snapshot
            if self.depth is None:  # the venue sends one on a new subscription
                self._stale_reason = "book resync: resubscribing for a snapshot"
                return True
            self._snapshot_round(resync=True)  # REST: fetch one, the stream goes on
        if self._blocked or now_us() - self._last_rx <= int(self.feed.stale_s * 1e6):
            return False
        self._stale_reason = f"stale: no frame for {self.feed.stale_s:g}s"
        return True

    def _watch_tick(self) -> float:
        return min(1.0, self.feed.stale_s / 4)

    def _closed(self, close_code: int | None, close_reason: str) -> None:
        """The connection ended: raise `_Disconnect` with the reason, or return when the
        replay is over (sets `finished`) or we were stopped."""
        if self._writer is not None:
            self._writer.flush()
        if self._stale_reason is not None:
            reason, self._stale_reason = self._stale_reason, None
            raise _Disconnect(reason, self._last_rx)
        if close_code == END_OF_STREAM and self.stop_at_end:
            self.finished = True
        elif self._stopping:
            return
        elif close_code is not None:
            raise _Disconnect(f"closed by server: {close_code} {close_reason}".strip())
        else:
            raise _Disconnect("connection lost (no close frame)")
