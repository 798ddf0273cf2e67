"""REST depth snapshots (dataflows/sources/depth_rest.py) against a real loopback HTTP server:
fetched per symbol with Binance's path and limit, retried on errors, injected into the
feed's frame queue as frames the book parser takes for snapshots, a failure a gap row and
a counter (never an exception), and injected frames kept out of the server's positions."""

from __future__ import annotations

import asyncio
import time

import pytest

from dataflows import metrics
from dataflows.books.capture import book_symbols
from dataflows.books.parsers import book_parser
from dataflows.books.resync import request_resync
from dataflows.sources import depth_rest
from dataflows.sources.depth_rest import STREAM_SUFFIX, DepthSnapshots, depth_snapshots
from dataflows.sources.exchange import FeedPartition, FrameQueue
from dataflows.venues import get_venue
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.settings import FeedSettings
from tests.support.binance_depth import DepthServer, depth_events, snapshot_body
from tests.support.cli import run_cli
from tests.support.ingest import captures_dir
from tests.support.paths import corpus
from tests.support.sessions import drain, recorded_frames

pytestmark = pytest.mark.integration

EVENTS = depth_events("BINANCE_FUTURES.ws.1.0")
BODIES = {native: snapshot_body(events, 10, True) for native, events in EVENTS.items()}


def _run(snapshots: DepthSnapshots, queue: FrameQueue) -> None:
    asyncio.run(snapshots.run(queue, None, lambda: 1))


def test_each_symbol_is_fetched_once_and_injected_as_a_snapshot_frame():
    queue = FrameQueue(feed="bf")
    with DepthServer(BODIES) as server:
        snapshots = DepthSnapshots("bf", "binance_futures", server.url, "/fapi/v1/depth",
                                   sorted(BODIES))
        _run(snapshots, queue)
    assert sorted(server.requests) == sorted(f"/fapi/v1/depth?symbol={s}&limit=1000"
                                             for s in BODIES)
    frames, gaps = queue.take(100)
    assert gaps == [] and len(frames) == len(BODIES) == snapshots.fetched
    assert queue.injected_out == len(BODIES)  # the partition keeps them out of positions
    parse = book_parser("binance_futures")
    for (_ts, raw), native in zip(frames, sorted(BODIES), strict=True):
        (snapshot,) = parse(raw, 0)
        assert snapshot.is_snapshot and snapshot.native_symbol == native
        assert snapshot.update_id == EVENTS[native][10]["u"]
        assert snapshot.exchange_ts == EVENTS[native][10]["T"] * 1000


def test_errors_are_retried_with_backoff(monkeypatch):
    monkeypatch.setattr(depth_rest, "BACKOFF_S", (0.01, 0.02))
    queue = FrameQueue(feed="bf")
    with DepthServer(BODIES, fail_first=2) as server:
        _run(DepthSnapshots("bf", "binance_futures", server.url, "/fapi/v1/depth",
                            ["SUSHIUSDT"]), queue)
    assert len(server.requests) == 3  # two HTTP 500s, then the reply
    frames, gaps = queue.take(10)
    assert len(frames) == 1 and gaps == []


def test_a_failed_fetch_is_a_gap_row_and_a_counter_not_a_crash(monkeypatch):
    monkeypatch.setattr(depth_rest, "BACKOFF_S", (0.01, 0.02))
    before = metrics.counter("book_snapshot_failures").get("bf-fail", 0)
    queue = FrameQueue(feed="bf-fail")
    with DepthServer(BODIES, fail_first=1000) as server:
        snapshots = DepthSnapshots("bf-fail", "binance_futures", server.url,
                                   "/fapi/v1/depth", ["SUSHIUSDT", "AKROUSDT"])
        _run(snapshots, queue)
    assert len(server.requests) == 2 * depth_rest.ATTEMPTS
    frames, gaps = queue.take(10)
    assert frames == [] and snapshots.failed == 2
    assert [(g.kind, g.reason.split(" http")[0]) for g in gaps] == [
        ("snapshot", "depth snapshot unavailable: SUSHIUSDT"),
        ("snapshot", "depth snapshot unavailable: AKROUSDT")]
    assert "HTTP 500" in gaps[0].reason
    assert metrics.counter("book_snapshot_failures")["bf-fail"] == before + 2


def test_an_unreachable_host_fails_the_same_way(monkeypatch):
    monkeypatch.setattr(depth_rest, "BACKOFF_S", (0.01, 0.02))
    queue = FrameQueue(feed="bf")
    with DepthServer(BODIES) as server:
        url = server.url
    snapshots = DepthSnapshots("bf", "binance_futures", url, "/fapi/v1/depth", ["SUSHIUSDT"])
    _run(snapshots, queue)  # the server is gone: connection refused
    _frames, gaps = queue.take(10)
    assert snapshots.failed == 1 and "ClientConnectorError" in gaps[0].reason


def test_which_feeds_fetch_and_from_where():
    def fetcher(**feed):
        settings = FeedSettings(name="b", venue=feed.pop("venue", "binance_futures"),
                                symbols=["SUSHI-USDT-PERP"], **feed)
        return depth_snapshots(settings, get_venue(settings.venue))

    live = fetcher(channels=["trades", "books"])
    assert live.url == "https://fapi.binance.com/fapi/v1/depth" and live.natives == ["SUSHIUSDT"]
    spot = fetcher(venue="binance", channels=["books"])
    assert spot.url == "https://api.binance.com/api/v3/depth"
    assert fetcher(venue="binance_delivery", channels=["books"]).url.startswith(
        "https://dapi.binance.com/dapi/v1/depth")
    assert fetcher(channels=["trades"]) is None  # no books
    assert fetcher(venue="okx", channels=["books"]) is None  # snapshots come on the stream
    # a recorded session on loopback has no REST depth, unless rest_url names one
    assert fetcher(channels=["books"], url="ws://127.0.0.1:9/BINANCE_FUTURES.ws.1.0") is None
    served = fetcher(channels=["books"], url="ws://127.0.0.1:9/x", rest_url="http://127.0.0.1:8")
    assert served.url == "http://127.0.0.1:8/fapi/v1/depth"


def test_a_bad_rest_url_stops_the_command_with_one_line(tmp_path):
    config = tmp_path / "feedhouse.yaml"
    config.write_text("feeds:\n  - {name: bf, venue: binance_futures, symbols: [BTC-USDT-PERP],"
                      " channels: [books], rest_url: 'fapi.binance.com'}\n")
    result = run_cli("--config", str(config), "run", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: setting 'feeds.0.rest_url': not an http(s) URL without a query: "
        "'fapi.binance.com'"]


@pytest.mark.parametrize("client", ["picows", "websockets"])
def test_a_resync_refetches_without_reconnecting_and_a_resume_skips_no_frame(
        tmp_path, monkeypatch, client):
    """A book's resync asks for new snapshots on the open stream (Binance's procedure);
    the source state counts the injected frames, so a resumed client asks the replay
    server for exactly the frame after the last one it handed over."""
    monkeypatch.setattr(depth_rest, "RESYNC_SPACING_S", 0.0)
    name = "BINANCE_FUTURES.ws.1.0"
    recorded = recorded_frames(name)
    with DepthServer(BODIES) as depth, \
            SessionServer(captures_dir(tmp_path, (name,)), speed=3) as server:  # ~10 s
        feed = FeedSettings(name="bf-resync", venue="binance_futures", url=server.url(name),
                            symbols=sorted(book_symbols(corpus(name))), channels=["books"],
                            rest_url=depth.url, ws_client=client)
        part = FeedPartition(feed, 0)
        try:
            taken = _drain_until(part, lambda frames: _injected(frames) == len(BODIES))
            request_resync("bf-resync")
            taken += _drain_until(part, lambda frames: _injected(taken + frames) == 2 * len(BODIES))
            assert part.client.stats["connects"] == 1  # no reconnect for a resync
        finally:
            part.close()
        state = part.snapshot()
        assert state == (len(taken), 2 * len(BODIES))
        assert len(depth.requests) == 2 * len(BODIES)
        sent = [f for _ts, f in taken if STREAM_SUFFIX not in f]
        assert sent == recorded[: len(sent)]
        again = FeedPartition(feed, state)
        try:
            rest, _gaps, starts = drain(again, timeout=30)
        finally:
            again.close()
    assert starts[0] == state[0] and again.client.stats["connects"] == 1
    assert [f for _ts, f in rest if STREAM_SUFFIX not in f] == recorded[len(sent):]
    assert _injected(rest) == len(BODIES)  # the new connection fetched its own


def _injected(frames) -> int:
    return sum(1 for _ts, f in frames if STREAM_SUFFIX in f)


def _drain_until(part: FeedPartition, done, timeout_s: float = 20.0) -> list:
    frames: list = []
    deadline = time.monotonic() + timeout_s
    while not done(frames):
        assert time.monotonic() < deadline, f"timed out after {len(frames)} frames"
        for batch in part.next_batch():
            frames += batch.messages
        time.sleep(0.01)
    return frames
