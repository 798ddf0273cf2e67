"""The fallback exchange client on the `websockets` library (`feeds[].ws_client: websockets`).

Same behaviour as the default picows client (`ws_picows.py`), at about four times its CPU
per frame; kept for a venue or network where picows misbehaves. websockets also reads
proxies from the environment (HTTPS_PROXY, ...) by itself.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from dataflows.sources.websocket import (
    MAX_FRAME_BYTES,
    OPEN_TIMEOUT_S,
    PING_INTERVAL_S,
    PING_TIMEOUT_S,
    REPLAY_HEADER,
    BaseFeedClient,
    _Disconnect,
    now_us,
)


class WebsocketsFeedClient(BaseFeedClient):
    async def _connection(self) -> None:
        url = self.url()
        async with connect(
            url,
            max_size=MAX_FRAME_BYTES,
            open_timeout=OPEN_TIMEOUT_S,
            ping_interval=PING_INTERVAL_S,
            ping_timeout=PING_TIMEOUT_S,
            close_timeout=2,
            max_queue=1024,  # frames buffered before pausing the socket (fewer toggles)
        ) as ws:
            header = ws.response.headers.get(REPLAY_HEADER) if ws.response else None
            if not self._opened(url, header):
                raise _Disconnect("resume")
            for frame in self._subscribe_frames():
                await self._send(ws, frame)
            await self._receive(ws)

    async def _send(self, ws: ClientConnection, frame: str | bytes) -> None:
        await ws.send(frame)
        self._recorded_sent(frame)

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

    async def _receive(self, ws: ClientConnection) -> None:
        helpers = [asyncio.create_task(self._watchdog(ws))]
        if self.venue.ping_frame and self.venue.ping_interval_s:
            helpers.append(asyncio.create_task(self._pinger(ws)))
        stop_wait = asyncio.create_task(self._stop_event.wait())  # type: ignore[union-attr]
        helpers.append(stop_wait)
        stop_wait.add_done_callback(
            lambda task: None if task.cancelled() else asyncio.ensure_future(ws.close())
        )
        sink = self.sink
        try:
            async for frame in ws:
                ts, reply = self._frame(frame)
                if reply is not None:
                    await self._send_quietly(ws, reply)
                if not sink.put(ts, frame):
                    # backpressure: stop reading (TCP pushes back) until the sink drained
                    self._blocked = True
                    await sink.wait_space()
                    self._blocked = False
                    self._last_rx = now_us()
        except ConnectionClosed:
            pass
        finally:
            for task in helpers:
                task.cancel()
        rcvd = ws.protocol.close_rcvd
        self._closed(rcvd.code if rcvd is not None else None, rcvd.reason if rcvd else "")

    async def _watchdog(self, ws: ClientConnection) -> None:
        """No frame for stale_s -> drop the connection; flush the recording now and then."""
        tick = self._watch_tick()
        while True:
            await asyncio.sleep(tick)
            if self._is_stale():
                ws.transport.abort()
                return

    async def _pinger(self, ws: ClientConnection) -> None:
        assert self.venue.ping_frame is not None and self.venue.ping_interval_s
        while True:
            await asyncio.sleep(self.venue.ping_interval_s)
            await self._send_quietly(ws, self.venue.ping_frame)
