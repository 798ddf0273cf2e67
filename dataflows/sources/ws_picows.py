"""The default exchange client, on picows (a Cython WebSocket library).

picows calls `_Listener.on_ws_frame` for every frame straight from the socket's read
callback: no per-frame future, task or queue as with websockets, which is most of the
~4x smaller CPU per frame (see docs/performance.md). What the old client got from
websockets is done here:

- protocol pings every 20 s, the connection dropped when no pong came in 20 s
  (picows' auto-ping); the server's pings answered (auto-pong);
- the close handshake: a server's close frame is answered and its code kept (4000 = end
  of a replay); `stop()` sends a close frame and waits up to 2 s for the server's;
- fragmented messages are reassembled; text frames become `str`, binary `bytes`;
- TLS for `wss://` with the default context (system CAs, hostname checked);
- proxies from the environment (HTTPS_PROXY, ALL_PROXY/SOCKS, NO_PROXY) as websockets does;
- backpressure: when the sink is full the socket stops being read (`pause_reading`);
  frames picows already had in its read buffer wait in `_pending` (at most one read's
  worth), so the sink never holds more than it allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.request
from collections import deque
from urllib.parse import urlsplit

from picows import WSAutoPingStrategy, WSCloseCode, WSFrame, WSListener, WSMsgType, ws_connect

from dataflows.sources.websocket import (
    MAX_FRAME_BYTES,
    OPEN_TIMEOUT_S,
    PING_INTERVAL_S,
    PING_TIMEOUT_S,
    REPLAY_HEADER,
    USE_AIOFASTNET,
    BaseFeedClient,
    _Disconnect,
    now_us,
)

TEXT, BINARY, CONTINUATION, CLOSE = (
    WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION, WSMsgType.CLOSE)
CLOSE_WAIT_S = 2.0


def proxy_for(url: str) -> str | None:
    """The proxy websockets would use for `url` (environment / OS settings), or None."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    if urllib.request.proxy_bypass(f"{parts.hostname}:{port}"):
        return None
    proxies = urllib.request.getproxies()
    for scheme in (["wss", "socks", "https"] if secure else ["ws", "socks", "https", "http"]):
        proxy = proxies.get(scheme)
        if proxy is not None:
            if scheme == "socks" and proxy.startswith("http://"):
                proxy = "socks5://" + proxy[7:]
            return proxy.replace("socks5h://", "socks5://", 1)
    return None


class _Listener(WSListener):
    """One connection's callbacks; the hot path (`on_ws_frame`) is kept flat."""

    def __init__(self, client: FeedClient, url: str) -> None:
        super().__init__()
        self.client = client
        self.url = url
        self.resume = False  # the server is the replay server: reconnect with ?from=
        self._parts: list[bytes] | None = None  # a fragmented message so far
        self._parts_text = False

    def on_ws_connected(self, transport) -> None:
        client = self.client
        headers = transport.response.headers if transport.response is not None else {}
        if not client._opened(self.url, headers.get(REPLAY_HEADER)):
            self.resume = True
            transport.disconnect(graceful=False)
            return
        for frame in client._subscribe_frames():
            client._send(transport, frame)

    def on_ws_frame(self, transport, frame: WSFrame) -> None:
        if self.resume:
            return
        kind = frame.msg_type
        if frame.fin and self._parts is None:
            if kind is TEXT:
                data = frame.get_payload_as_utf8_text()
            elif kind is BINARY:
                data = frame.get_payload_as_bytes()
            elif kind is CLOSE:
                self._close_received(transport, frame)
                return
            else:
                return  # pong (ping is answered by picows)
        elif kind is CLOSE:
            self._close_received(transport, frame)
            return
        else:
            data = self._fragment(kind, frame)
            if data is None:
                return
        client = self.client
        ts, reply = client._frame(data)
        if reply is not None and not transport.is_close_frame_sent:
            client._send(transport, reply)
        if client._blocked:
            client._pending.append((ts, data))
        elif not client.sink.put(ts, data):
            client._block(transport)

    def _fragment(self, kind, frame: WSFrame) -> str | bytes | None:
        if kind is TEXT or kind is BINARY:
            self._parts, self._parts_text = [], kind is TEXT
        elif kind is not CONTINUATION or self._parts is None:
            return None  # a control frame between fragments, or a stray continuation
        self._parts.append(frame.get_payload_as_bytes())
        if not frame.fin:
            return None
        payload, self._parts = b"".join(self._parts), None
        return payload.decode() if self._parts_text else payload

    @staticmethod
    def _close_received(transport, frame: WSFrame) -> None:
        if not transport.is_close_frame_sent:  # answer with the same code, as RFC 6455 asks
            code = frame.get_close_code()
            transport.send_close(code if code is not WSCloseCode.NO_INFO else WSCloseCode.OK)
        transport.disconnect()


class FeedClient(BaseFeedClient):
    """The default client (`feeds[].ws_client: picows`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending: deque[tuple[int, str | bytes]] = deque()
        self._unblocking: asyncio.Task | None = None

    async def _connection(self) -> None:
        url = self.url()
        secure = url.startswith("wss:")
        transport, listener = await asyncio.wait_for(ws_connect(
            lambda: _Listener(self, url),
            url,
            ssl_context=ssl.create_default_context() if secure else None,
            websocket_handshake_timeout=OPEN_TIMEOUT_S,
            enable_auto_ping=True,
            auto_ping_idle_timeout=PING_INTERVAL_S,
            auto_ping_reply_timeout=PING_TIMEOUT_S,
            auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
            max_frame_size=MAX_FRAME_BYTES,
            proxy=proxy_for(url),
            logger_name=f"feed.{self.feed.name}",
            use_aiofastnet=USE_AIOFASTNET,
        ), OPEN_TIMEOUT_S)
        if listener.resume:
            await transport.wait_disconnected()
            raise _Disconnect("resume")
        helpers = [asyncio.create_task(self._watchdog(transport))]
        if self.venue.ping_frame and self.venue.ping_interval_s:
            helpers.append(asyncio.create_task(self._pinger(transport)))
        stop_wait = asyncio.create_task(self._stop_event.wait())  # type: ignore[union-attr]
        done = asyncio.ensure_future(transport.wait_disconnected())
        try:
            await asyncio.wait((done, stop_wait), return_when=asyncio.FIRST_COMPLETED)
            if not done.done():  # stop(): close politely, then not wait forever
                if not transport.is_close_frame_sent:
                    transport.send_close(WSCloseCode.OK)
                await asyncio.wait((done,), timeout=CLOSE_WAIT_S)
                transport.disconnect(graceful=False)
            await done  # re-raises an error picows met (e.g. invalid UTF-8)
        finally:
            stop_wait.cancel()
            for task in helpers:
                task.cancel()
            if self._unblocking is not None:  # hand over what was read before the end
                await self._unblocking
        recv = transport.close_handshake.recv if transport.close_handshake else None
        if recv is None:
            self._closed(None, "")
        else:  # a close frame without a code is 1005 to websockets (and RFC 6455)
            code = int(getattr(recv.code, "value", recv.code))
            self._closed(code or 1005, recv.reason or "")

    def _send(self, transport, frame: str | bytes) -> None:
        if isinstance(frame, str):
            transport.send(WSMsgType.TEXT, frame.encode())
        else:
            transport.send(WSMsgType.BINARY, frame)
        self._recorded_sent(frame)

    # -- backpressure ------------------------------------------------------------------

    def _block(self, transport) -> None:
        """The sink is full: stop reading the socket (TCP pushes back on the server)."""
        self._blocked = True
        transport.underlying_transport.pause_reading()
        self._unblocking = asyncio.ensure_future(self._unblock(transport))

    async def _unblock(self, transport) -> None:
        sink, pending, full = self.sink, self._pending, True
        while full and not self._stopping:
            await sink.wait_space()
            full = False
            while pending and not full:
                ts, frame = pending.popleft()
                full = not sink.put(ts, frame)
        self._blocked, self._unblocking = False, None
        self._last_rx = now_us()
        if not transport.is_disconnected:
            with contextlib.suppress(RuntimeError):
                transport.underlying_transport.resume_reading()

    # -- timers ------------------------------------------------------------------------

    async def _watchdog(self, transport) -> None:
        """No frame for stale_s -> drop the connection; flush the recording now and then."""
        tick = self._watch_tick()
        while True:
            await asyncio.sleep(tick)
            if self._is_stale():
                transport.disconnect(graceful=False)
                return

    async def _pinger(self, transport) -> None:
        assert self.venue.ping_frame is not None and self.venue.ping_interval_s
        while True:
            await asyncio.sleep(self.venue.ping_interval_s)
            if transport.is_close_frame_sent or transport.is_disconnected:
                return
            self._send(transport, self.venue.ping_frame)
