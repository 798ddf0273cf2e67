"""The WebSocket client of one exchange feed: connection logic only, no parsing.

One `FeedClient` per feed runs in its own asyncio loop (the Bytewax source gives each
feed its own thread), so one venue failing or stalling never holds up another. The client

- connects to the feed's URL (or `venue.url_for` when the subscription lives in the URL),
  sends `venue.subscribe` frames after every (re)connect, answers the venue's ping frames
  and sends `venue.ping_frame` every `venue.ping_interval_s`;
- reconnects with exponential backoff and jitter, capped (`reconnect_initial_s` ..
  `reconnect_max_s`), and when no frame arrived for `stale_s`;
- reports every disconnect as a `Gap(kind="disconnect")` and every jump in a sequence the
  venue lets us see as a `Gap(kind="sequence", missing=N)`;
- records every frame received and sent with `CaptureWriter` when `record_dir` is set;
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

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from dataflows import metrics
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


class FrameSink(Protocol):
    def put(self, received_us: int, frame: str | bytes) -> bool:
        """Take a frame; False when full (the client then awaits `wait_space`)."""

    async def wait_space(self) -> None: ...

    def gap(self, gap: Gap) -> None: ...


def now_us() -> int:
    return time.time_ns() // 1000


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


class FeedClient:
    """Connects one feed and keeps it connected until `stop()` or the end of a replay."""

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
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.finished = False  # the replay server said the capture is over
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
            if self._writer is not None:
                self._writer.close()

    def _went_down(self, since: int, reason: str) -> None:
        metrics.set_connected(self.feed.name, False)
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

    # -- one connection ----------------------------------------------------------------

    async def _connection(self) -> None:
        url = self.url()
        async with connect(
            url,
            max_size=MAX_FRAME_BYTES,
            open_timeout=10,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            max_queue=1024,  # frames buffered before pausing the socket (fewer toggles)
        ) as ws:
            connected = now_us()
            if ws.response is not None and ws.response.headers.get(REPLAY_HEADER):
                if not self.resumable:
                    self.resumable = True
                    if self.next_pos > 0:
                        raise _Disconnect("resume")
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
            for frame in self.venue.subscribe(self.feed.symbols, self.feed.channels):
                await self._send(ws, frame)
            await self._receive(ws, connected)

    async def _send(self, ws: ClientConnection, frame: str | bytes) -> None:
        await ws.send(frame)
        if self._writer is not None:
            text = frame if isinstance(frame, str) else repr(frame)
            self._writer.sent(text, time.time())

    async def _send_quietly(self, ws: ClientConnection, frame: str | bytes) -> None:
        """Send a pong/ping; a closing connection still delivers what it has buffered.

        Not sending once closing matters: websockets' send() on a closing connection waits
        for the close to finish, which cannot happen while we are not reading (deadlock
        until close_timeout)."""
        if ws.protocol.state is not State.OPEN:
            return
        try:
            await self._send(ws, frame)
        except ConnectionClosed:
            pass

    async def _receive(self, ws: ClientConnection, connected: int) -> None:
        last_rx = [connected]
        helpers = [asyncio.create_task(self._watchdog(ws, last_rx))]
        if self.venue.ping_frame and self.venue.ping_interval_s:
            helpers.append(asyncio.create_task(self._pinger(ws)))
        stop_wait = asyncio.create_task(self._stop_event.wait())  # type: ignore[union-attr]
        helpers.append(stop_wait)
        stop_wait.add_done_callback(
            lambda task: None if task.cancelled() else asyncio.ensure_future(ws.close())
        )
        sink, writer, seq, answer = self.sink, self._writer, self._seq, self.venue.answer_ping
        try:
            async for frame in ws:
                ts = now_us()
                prev, last_rx[0] = last_rx[0], ts
                if answer is not None:
                    reply = answer(frame)
                    if reply is not None:
                        await self._send_quietly(ws, reply)
                if seq is not None:
                    for stream, expected, got in seq.check(frame):
                        self.stats["sequence_gaps"] += 1
                        # the missing numbers fell between the previous frame and this one
                        sink.gap(Gap(self.feed.name, self.venue.name, prev, ts, "sequence",
                                     f"{stream}: expected {expected}, got {got}",
                                     got - expected))
                if writer is not None:
                    writer.received(frame, ts / 1e6)
                self.next_pos += 1
                self.stats["frames"] += 1
                if not sink.put(ts, frame):
                    # backpressure: stop reading (TCP pushes back) until the sink drained
                    self._blocked = True
                    await sink.wait_space()
                    self._blocked = False
                    last_rx[0] = now_us()
        except ConnectionClosed:
            pass
        finally:
            for task in helpers:
                task.cancel()
            if writer is not None:
                writer.flush()
        if self._stale_reason is not None:
            reason, self._stale_reason = self._stale_reason, None
            raise _Disconnect(reason, last_rx[0])
        rcvd = ws.protocol.close_rcvd
        if rcvd is not None and rcvd.code == END_OF_STREAM and self.stop_at_end:
            self.finished = True
        elif self._stopping:
            return
        elif rcvd is not None:
            raise _Disconnect(f"closed by server: {rcvd.code} {rcvd.reason}".strip())
        else:
            raise _Disconnect("connection lost (no close frame)")

    async def _watchdog(self, ws: ClientConnection, last_rx: list[int]) -> None:
        """No frame for stale_s -> drop the connection; flush the recording now and then."""
        stale_us = int(self.feed.stale_s * 1e6)
        tick = min(1.0, self.feed.stale_s / 4)
        while True:
            await asyncio.sleep(tick)
            if self._writer is not None:
                self._writer.flush()
            if not self._blocked and now_us() - last_rx[0] > stale_us:
                self._stale_reason = f"stale: no frame for {self.feed.stale_s:g}s"
                ws.transport.abort()
                return

    async def _pinger(self, ws: ClientConnection) -> None:
        assert self.venue.ping_frame is not None and self.venue.ping_interval_s
        while True:
            await asyncio.sleep(self.venue.ping_interval_s)
            await self._send_quietly(ws, self.venue.ping_frame)
