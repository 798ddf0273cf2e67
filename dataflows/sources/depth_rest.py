"""REST depth snapshots beside a book stream that needs one (Binance), injected as frames.

Binance's `<symbol>@depth@100ms` stream only sends updates: a book starts from
`GET <rest>/api/v3/depth?symbol=X&limit=1000` (spot; USD-M `/fapi/v1/depth`, COIN-M
`/dapi/v1/depth`), fetched after the stream is open ("How to manage a local order book
correctly", developers.binance.com). A feed with the `books` channel on such a venue
fetches one per symbol once its connection delivered a frame, and again when its book
state asks for a resync (a sequence gap: Binance's procedure fetches a new snapshot, the
stream goes on). The fetch runs on the client's event loop (aiohttp), never in the
dataflow, and the reply goes into the feed's frame stream as
`{"stream": "<symbol>@depthSnapshot", "data": <reply, verbatim>}`, a frame the Binance
book parser knows (parsers.SNAPSHOT_STREAM): it is recorded, counted, parsed and
dead-lettered like any frame, and the book state syncs on it (state.py).

A failed fetch (HTTP error, timeout, refused; `ATTEMPTS` tries with exponential backoff)
leaves the book unsynced and shows: a warning, the `book_snapshot_failures` counter and an
ops.feed_gaps row of kind `snapshot`. The REST base is `feeds[].rest_url`, by default the
venue's public host - only when the feed connects to the venue's own hosts (a recorded
session on loopback has no REST depth unless `rest_url` names one).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp

from dataflows import metrics
from dataflows.frames import Gap
from dataflows.sources.websocket import Backoff, now_us
from dataflows.venues.base import Venue
from feedhouse.core.settings import FeedSettings

log = logging.getLogger(__name__)

# venue -> (public REST base, depth path)
REST_DEPTH = {
    "binance": ("https://api.binance.com", "/api/v3/depth"),
    "binance_us": ("https://api.binance.us", "/api/v3/depth"),
    "binance_futures": ("https://fapi.binance.com", "/fapi/v1/depth"),
    "binance_delivery": ("https://dapi.binance.com", "/dapi/v1/depth"),
}
LIMIT = 1000  # levels per side: spot weight 50, futures 20 (of 6000 / 2400 a minute)
ATTEMPTS = 4
TIMEOUT_S = 10.0
BACKOFF_S = (0.5, 8.0)  # first and longest wait between attempts
FIRST_FRAME_WAIT_S = 5.0  # the stream is open (a frame came) before the snapshot is asked
RESYNC_SPACING_S = 10.0  # fetch rounds asked by resyncs start at least this far apart
STREAM_SUFFIX = "@depthSnapshot"  # parsers.SNAPSHOT_STREAM


class SnapshotUnavailable(Exception):
    """Every attempt failed; the message says how the last one did."""


def depth_snapshots(feed: FeedSettings, venue: Venue) -> DepthSnapshots | None:
    """The feed's snapshot fetcher, or None (no books, no REST depth, or a recorded
    session without `rest_url`)."""
    found = REST_DEPTH.get(venue.name)
    if "books" not in feed.channels or found is None:
        return None
    base, path = found
    if feed.rest_url is None:
        host = (urlsplit(feed.url or venue.url).hostname or "").lower()
        if host not in venue.hosts:
            log.info("feed %s: no REST depth for a stream on %s (set rest_url); Binance books "
                     "stay unsynced", feed.name, host)
            return None
    return DepthSnapshots(feed.name, venue.name, feed.rest_url or base, path,
                          [venue.native_symbol(s) for s in feed.symbols])


class DepthSnapshots:
    """Fetches a feed's REST depth snapshots and puts them into its frame sink."""

    def __init__(self, feed: str, venue: str, base: str, path: str, natives: list[str]) -> None:
        self.feed, self.venue = feed, venue
        self.url = base.rstrip("/") + path
        self.natives = natives
        self.fetched = self.failed = 0
        self.resync_spacing_s = RESYNC_SPACING_S

    async def run(self, sink, record: Callable[[str, float], None] | None,
                  frames: Callable[[], int], delay_s: float = 0.0) -> None:
        """One round: wait `delay_s`, then for the connection's first frame (`frames()`:
        frames received on it), then fetch every symbol and inject each reply (recorded
        first)."""
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        waited = 0.0
        while not frames() and waited < FIRST_FRAME_WAIT_S:
            await asyncio.sleep(0.02)
            waited += 0.02
        inject = getattr(sink, "inject", sink.put)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context())
        async with aiohttp.ClientSession(timeout=timeout, connector=connector,
                                         trust_env=True) as session:
            for native in self.natives:
                try:
                    body = await self.fetch(session, native)
                except SnapshotUnavailable as exc:
                    self._failed(sink, native, str(exc))
                    continue
                frame = f'{{"stream":"{native.lower()}{STREAM_SUFFIX}","data":{body}}}'
                await sink.wait_space()
                ts = now_us()
                if record is not None:
                    record(frame, ts / 1e6)
                inject(ts, frame)
                self.fetched += 1
                metrics.count(self.feed, "book_snapshots")

    async def fetch(self, session: aiohttp.ClientSession, native: str) -> str:
        backoff = Backoff(*BACKOFF_S)
        error = ""
        for attempt in range(ATTEMPTS):
            try:
                async with session.get(self.url, params={"symbol": native,
                                                         "limit": str(LIMIT)}) as reply:
                    body = await reply.text()
                    if reply.status == 200:
                        return body
                    error = f"HTTP {reply.status}: {body[:200]}"
            except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(backoff.next_delay())
        raise SnapshotUnavailable(error)

    def _failed(self, sink, native: str, error: str) -> None:
        self.failed += 1
        log.warning("feed %s: depth snapshot of %s unavailable after %d attempts (%s); its "
                    "book stays unsynced", self.feed, native, ATTEMPTS, error)
        metrics.count(self.feed, "book_snapshot_failures")
        ts = now_us()
        sink.gap(Gap(self.feed, self.venue, ts, ts, "snapshot",
                     f"depth snapshot unavailable: {native} {self.url}: {error}"[:500]))
