"""One client of the session server on picows, and frames encoded for the wire once.

A server-to-client WebSocket frame is not masked, so a recorded frame's whole wire form
(header + payload) is computed when the capture loads (`encode_frame`) and sending it is
one `transport.write` of bytes; the sender joins the frames due at the same moment into
one write, which saves a system call per frame. `Peer` is the picows listener: it counts
the client's frames (its subscribe), answers a close, and turns the transport's flow
control into an event the sender awaits.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from picows import WSCloseCode, WSListener, WSMsgType

log = logging.getLogger(__name__)

WRITE_LIMIT = 2**20  # bytes buffered for a client before the sender waits
CLOSE_TIMEOUT_S = 10.0  # wait this long for the client's close reply, then drop


def encode_frame(frame: str | bytes) -> bytes:
    """The unmasked wire form of one final text (str) or binary (bytes) frame."""
    if isinstance(frame, str):
        payload, first = frame.encode(), 0x81
    else:
        payload, first = bytes(frame), 0x82
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


class Peer(WSListener):
    """A connection: path, start position, and what the sender needs to know of it."""

    def __init__(self, on_connected, name: str, start: int, refuse: tuple[int, str] | None,
                 stats=None) -> None:
        super().__init__()
        self.stats = stats  # the path's counters (`client_frames`), None when refused
        self.on_connected = on_connected  # (peer) -> None, starts the sender
        self.name = name
        self.start = start
        self.refuse = refuse  # (close code, reason) to send instead of the stream
        self.subscribed = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self.gone = False
        self.transport = None
        self.task: asyncio.Task | None = None

    def on_ws_connected(self, transport) -> None:
        self.transport = transport
        transport.underlying_transport.set_write_buffer_limits(high=WRITE_LIMIT)
        self.on_connected(self)

    def on_ws_frame(self, transport, frame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.fin and kind in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
            if self.stats is not None:
                self.stats.client_frames += 1
            self.subscribed.set()

    def on_ws_disconnected(self, transport) -> None:
        self.gone = True
        self.subscribed.set()  # wake a sender waiting for the subscribe: it sees `gone`
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def write(self, data: bytes) -> None:
        if not self.gone:
            self.transport.underlying_transport.write(data)

    def abort(self) -> None:
        """Like a network failure: no close frame."""
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    async def close(self, code: int, reason: str, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close handshake: send ours, wait for the client's reply, then end the TCP
        connection (at most 2 x timeout_s)."""
        transport = self.transport
        if self.gone or transport is None:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason.encode())
        try:
            await asyncio.wait_for(transport.wait_disconnected(), timeout_s)
            return
        except TimeoutError:
            pass
        # A client still behind (backpressured) has not read our close yet: end with a FIN
        # after what is buffered, not an abort (whose RST would discard the frames in its
        # socket buffer that were counted as sent); abort only if that stalls too.
        log.warning("session server: %s: no close reply within %gs (%d bytes still "
                    "buffered); closing after them", self.name, timeout_s,
                    transport.underlying_transport.get_write_buffer_size())
        transport.disconnect(graceful=True)
        try:
            await asyncio.wait_for(transport.wait_disconnected(), timeout_s)
        except TimeoutError:
            transport.disconnect(graceful=False)
