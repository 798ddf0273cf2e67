"""Helpers shared by the replay-server and exchange-source tests (real WebSockets)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataflows.frames import Gap
from dataflows.sources.capture import read_capture
from dataflows.sources.exchange import FeedPartition
from feedhouse.app.drills.served import link_sessions
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.settings import FeedSettings
from tests.support.paths import SESSIONS, corpus

# capture file -> (venue, symbols to subscribe, channels); symbols are in the capture.
CASES = {
    "BINANCE_FUTURES.ws.1.0": ("binance_futures", ["SUSHI-USDT", "AKRO-USDT"], ["trades"]),
    "COINBASE.ws.28.0": ("coinbase", ["SKL-USD", "SKL-BTC"], ["trades", "quotes"]),
    "OKX.ws.1.0": ("okx", ["BTC-USDT"], ["trades", "quotes"]),
    "KRAKEN.ws.48.0": ("kraken", ["XMR-USD"], ["trades"]),
    "BYBIT.ws.25.0": ("bybit", ["BCH-USDT"], ["trades"]),
    "HUOBI.ws.44.0": ("huobi", ["BTC-USDT"], ["trades"]),
    "BITSTAMP.ws.1.0": ("bitstamp", ["ETH-USD"], ["trades"]),
}


def captures_dir(tmp: Path, names=CASES) -> Path:
    """A folder holding links to the chosen recorded sessions."""
    return link_sessions(tmp, names, SESSIONS)


@pytest.fixture(scope="module", name="folder")
def folder_fixture(tmp_path_factory) -> Path:
    """Links to every session in CASES (one folder per test module)."""
    return captures_dir(tmp_path_factory.mktemp("captures"))


@pytest.fixture(scope="module", name="server")
def server_fixture(folder: Path) -> Iterator[SessionServer]:
    """A session server on `folder` at full speed, for the whole test module."""
    with SessionServer(folder, speed="max") as srv:
        yield srv


def recorded_frames(name: str) -> list[str | bytes]:
    return [e.data for e in read_capture(corpus(name)) if e.kind == "received"]


def frames_sent_once_held(server: SessionServer, name: str, within_s: float = 10) -> int:
    """Frames the server sent on `name` once that count stops growing (nobody drains the
    client: a bounded queue must hold the server back); asserts that it does."""
    first, deadline = -1, time.monotonic() + within_s
    while time.monotonic() < deadline:
        time.sleep(0.3)
        sent = server.stats()[name]["frames_sent"]
        if sent == first:
            break
        first = sent
    assert server.stats()[name]["frames_sent"] == first, "the server is never held back"
    return first


def feed_for(server, name: str, feed_name: str | None = None, **extra) -> FeedSettings:
    venue, symbols, channels = CASES[name]
    return FeedSettings(
        name=feed_name or venue,
        venue=venue,
        url=server.url(name),
        symbols=symbols,
        channels=channels,
        **extra,
    )


def drain(
    part: FeedPartition, limit: int | None = None, timeout: float = 20.0
) -> tuple[list[tuple[int, str | bytes]], list[Gap], list[int]]:
    """Pull batches until the partition ends (or `limit` frames); (frames, gaps, first_pos)."""
    frames: list[tuple[int, str | bytes]] = []
    gaps: list[Gap] = []
    starts: list[int] = []
    deadline = time.monotonic() + timeout
    while limit is None or len(frames) < limit:
        assert time.monotonic() < deadline, f"timed out after {len(frames)} frames"
        try:
            batches = part.next_batch()
        except StopIteration:
            break
        for batch in batches:
            assert batch.first_pos == part.pos - len(batch.messages)
            starts.append(batch.first_pos)
            frames.extend(batch.messages)
            gaps.extend(batch.gaps)
        if not batches:
            time.sleep(0.002)
    return frames, gaps, starts


def trade_rows(trades) -> list[tuple]:
    """Trades without the receive time (that one is the client's clock)."""
    return [t._replace(received_ts=0) for t in trades]
