"""Both exchange clients (picows, the default, and the websockets fallback) keep every
behaviour, over real WebSockets on 127.0.0.1 against the session server (or, for what it
cannot do, a small picows server written here): end of a replay, the venue's pongs and
heartbeats, protocol pings, reconnects that resume, the stale timer, TLS, fragmented
messages, backpressure by queued bytes, and proxies from the environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from picows import (
    WSListener,
    WSMsgType,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

import dataflows.sources.ws_picows as ws_picows
import dataflows.sources.ws_websockets as ws_websockets
from dataflows.sources.exchange import CLIENTS, FeedPartition, FrameQueue
from dataflows.sources.ws_picows import proxy_for
from dataflows.venues import get_venue
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.settings import FeedSettings
from tests.support.sessions import (
    drain,
    feed_for,
    folder_fixture,  # noqa: F401
    frames_sent_once_held,
    recorded_frames,
    server_fixture,  # noqa: F401
)

pytestmark = pytest.mark.integration
FAST = {"reconnect_initial_s": 0.02, "reconnect_max_s": 0.2}


@pytest.fixture(params=sorted(CLIENTS))
def ws_client(request) -> str:
    return request.param


def run_client(client, seconds: float) -> threading.Thread:
    """A client in its own thread and loop (as FeedPartition does), stopped after `seconds`."""
    def main() -> None:
        asyncio.run(client.run())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    threading.Timer(seconds, client.stop).start()
    return thread


def test_binary_frames_venue_pongs_and_the_end_of_the_replay(folder: Path, ws_client) -> None:
    name = "HUOBI.ws.44.0"  # gzip binary frames, 6 of them the venue's pings
    venue = get_venue("huobi")
    pings = sum(venue.answer_ping(f) is not None for f in recorded_frames(name))
    assert pings == 6
    # paced (30 s in 1 s): the pings arrive while the connection is open, not after the
    # server's close, when a client no longer answers them
    with SessionServer(folder, speed=30) as srv:
        feed = feed_for(srv, name, ws_client=ws_client)
        part = FeedPartition(feed, 0)
        try:
            frames, gaps, _ = drain(part)  # ends: the server closes with 4000
        finally:
            part.close()
        stats = srv.stats()[name]
    assert [f for _, f in frames] == recorded_frames(name)
    assert all(isinstance(f, bytes) for _, f in frames) and gaps == []
    assert part.client.finished and part.client.stats["connects"] == 1
    subscribes = len(venue.subscribe(feed.symbols, feed.channels))
    assert stats["client_frames"] == subscribes + pings  # every ping answered


def test_reconnects_resume_every_frame_once(folder: Path, ws_client) -> None:
    name = "COINBASE.ws.28.0"
    with SessionServer(folder, speed=30, faults="drop=0.25s") as srv:
        part = FeedPartition(feed_for(srv, name, ws_client=ws_client, **FAST), 0)
        try:
            frames, gaps, _ = drain(part, timeout=30)
        finally:
            part.close()
        stats = srv.stats()[name]
    assert [f for _, f in frames] == recorded_frames(name)
    disconnects = [g for g in gaps if g.kind == "disconnect"]
    assert len(disconnects) >= 2 and stats["drops"] >= len(disconnects)
    assert stats["connections"] == len(disconnects) + 1 == part.client.stats["connects"]
    assert all(g.reason.startswith("connection lost") for g in disconnects)


def test_stale_feed_is_dropped_and_reconnected(folder: Path, ws_client) -> None:
    name = "KRAKEN.ws.48.0"  # trades ~1 s apart; at speed 0.5 a 2 s silence
    with SessionServer(folder, speed=0.5) as srv:
        part = FeedPartition(feed_for(srv, name, stale_s=0.3, ws_client=ws_client, **FAST), 0)
        try:
            deadline, gaps = time.monotonic() + 15, []
            while not gaps and time.monotonic() < deadline:
                for batch in part.next_batch():
                    gaps.extend(batch.gaps)
                time.sleep(0.01)
        finally:
            part.close()
    assert gaps and gaps[0].reason.startswith("stale: no frame for 0.3s")
    assert srv.stats()[name]["connections"] >= 2


def test_venue_heartbeats_are_sent_on_their_interval(folder: Path, ws_client) -> None:
    name = "KRAKEN.ws.48.0"
    with SessionServer(folder, speed=0.5) as srv:
        feed = feed_for(srv, name, ws_client=ws_client)
        venue = dataclasses.replace(get_venue("kraken"), ping_interval_s=0.1)
        client = CLIENTS[ws_client](feed, venue, FrameQueue(feed=feed.name))
        run_client(client, 1.0).join(10)
        sent = srv.stats()[name]["client_frames"]
    assert 1 + 5 <= sent <= 1 + 11  # the subscribe, then ~9 '{"method":"ping"}'


def test_bytes_bound_the_queue_and_push_back_on_the_server(folder: Path, ws_client) -> None:
    name = "COINBASE.ws.28.0"
    with SessionServer(folder, speed="max", loop=True) as srv:
        feed = feed_for(srv, name, stale_s=60, queue_mb=0.05, ws_client=ws_client)
        part = FeedPartition(feed, 0)
        try:
            first = frames_sent_once_held(srv, name)
            held = part.queue.bytes_in - part.queue.bytes_out
            biggest = max(len(f) for f in recorded_frames(name))
            assert 0.05 * 2**20 <= held < 0.05 * 2**20 + biggest  # full, and no further
            frames, _, _ = drain(part, limit=first + 1000)
            assert srv.stats()[name]["frames_sent"] > first  # draining lets it flow again
        finally:
            part.close()


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (and 127.0.0.1)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def tls_server(folder: Path, certificate) -> SessionServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return SessionServer(folder, speed="max", ssl_context=context, host="localhost")


def test_tls_with_a_trusted_certificate(folder: Path, certificate, ws_client,
                                        monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the default context's CAs
    name = "OKX.ws.1.0"
    with tls_server(folder, certificate) as srv:
        assert srv.url(name).startswith("wss://localhost:")
        part = FeedPartition(feed_for(srv, name, ws_client=ws_client), 0)
        try:
            frames, gaps, _ = drain(part)
        finally:
            part.close()
    assert [f for _, f in frames] == recorded_frames(name) and gaps == []


def test_tls_refuses_an_unknown_certificate(folder: Path, certificate, ws_client) -> None:
    with tls_server(folder, certificate) as srv:
        feed = feed_for(srv, "OKX.ws.1.0", ws_client=ws_client, **FAST)
        part = FeedPartition(feed, 0)
        try:
            time.sleep(1.0)
            assert part.next_batch() == [] and part.client.stats["connects"] == 0
            assert "CERTIFICATE_VERIFY_FAILED" in (part.client._down or (0, ""))[1]
        finally:
            part.close()


# -- what the session server does not do: a small picows server ----------------------------


class _Fragments(WSListener):
    """Sends one text and one binary message, each in three fragments, then waits."""

    def on_ws_connected(self, transport) -> None:
        for kind, parts in ((WSMsgType.TEXT, [b'{"a":', b'"b",', b'"c":1}']),
                            (WSMsgType.BINARY, [b"\x00\x01", b"\x02", b"\x03"])):
            for i, part in enumerate(parts):
                transport.send(kind if i == 0 else WSMsgType.CONTINUATION, part,
                               fin=i == len(parts) - 1)


def serve(listener_cls, **kwargs):
    """A picows server in a thread; returns (port, stop)."""
    ready, box = threading.Event(), {}

    async def main() -> None:
        def route(request):
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_101_response(),
                                                 listener_cls())

        server = await ws_create_server(route, "127.0.0.1", 0, **kwargs)
        box["port"], box["stop"] = server.sockets[0].getsockname()[1], asyncio.Event()
        box["loop"] = asyncio.get_running_loop()
        ready.set()
        await box["stop"].wait()
        server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    return box["port"], lambda: box["loop"].call_soon_threadsafe(box["stop"].set)


def exchange_feed(port: int, ws_client: str, **extra) -> FeedSettings:
    return FeedSettings(name="x", venue="coinbase", url=f"ws://127.0.0.1:{port}/",
                        symbols=["BTC-USD"], ws_client=ws_client, **extra)


def test_fragmented_messages_are_reassembled(ws_client) -> None:
    port, stop = serve(_Fragments)
    try:
        feed = exchange_feed(port, ws_client)
        queue = FrameQueue(feed=feed.name)
        client = CLIENTS[ws_client](feed, get_venue("coinbase"), queue)
        run_client(client, 1.0).join(10)
    finally:
        stop()
    assert [f for _, f in queue.frames] == ['{"a":"b","c":1}', b"\x00\x01\x02\x03"]


def test_a_peer_that_stops_answering_pings_is_dropped(ws_client, monkeypatch) -> None:
    module = ws_picows if ws_client == "picows" else ws_websockets
    monkeypatch.setattr(module, "PING_INTERVAL_S", 0.2)
    monkeypatch.setattr(module, "PING_TIMEOUT_S", 0.2)
    port, stop = serve(WSListener, enable_auto_pong=False)  # silent, never pongs
    try:
        feed = exchange_feed(port, ws_client, stale_s=60, reconnect_initial_s=10)
        queue = FrameQueue(feed=feed.name)
        client = CLIENTS[ws_client](feed, get_venue("coinbase"), queue)
        run_client(client, 3.5).join(10)  # websockets: + its 2 s close timeout
    finally:
        stop()
    assert client.stats["connects"] == 1 and client.stats["disconnects"] == 1
    assert client._down is not None  # down when stopped: the backoff (>= 5 s) was running


def test_proxies_come_from_the_environment(monkeypatch) -> None:
    for var in ("http_proxy", "https_proxy", "socks_proxy", "no_proxy", "HTTP_PROXY",
                "HTTPS_PROXY", "SOCKS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert proxy_for("wss://ws.okx.com:8443/ws/v5/public") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert proxy_for("wss://ws.okx.com:8443/ws/v5/public") == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "ws.okx.com")
    assert proxy_for("wss://ws.okx.com:8443/ws/v5/public") is None
    monkeypatch.setenv("SOCKS_PROXY", "socks5h://127.0.0.1:1080")  # SOCKS first (RFC 6455)
    assert proxy_for("wss://stream.binance.com:9443/ws") == "socks5://127.0.0.1:1080"
