"""Replay server: recorded exchange sessions over real WebSocket connections on loopback.

Each capture file of a folder is one endpoint, `ws://127.0.0.1:PORT/<file name>` (any
further path and query, e.g. Binance's `/stream?streams=...`, is accepted). Per
connection the server sends the frames the recorded client got before it sent anything
(greetings), waits for the client's first frame (its subscribe) when the recorded session
sent one, then sends the rest: the recorded acks and data, at the recorded pace x `speed`
or, with speed None ("max"), as fast as the client reads (the socket's write buffer pushes
back). Text frames go out as text, binary ones (HTX gzip) as binary.

It runs on picows and uvloop with each frame's wire form encoded once (peer.py), and
frames due at the same moment leave in one write: it shares the cores with the pipeline
it feeds in every benchmark and drill, so its CPU per frame matters (docs/performance.md).

Positions: frames are numbered from 0 in send order - greetings, acks and data alike,
laps after laps, a duplicated frame (fault) taking two numbers - which is exactly the
count the exchange source keeps. `?from=N` starts at position N (still after the client's
subscribe). A finite stream ends with close code 4000 ("end of capture").

`loop=True` repeats the session forever with ids, sequences, prices and times shifted per
lap (dataflows/replay/shift.py). Faults (dataflows/replay/faults.py) drop connections,
duplicate and corrupt frames.

Counters per path (`stats()`, and `stats_file` rewritten every second): connections,
client frames (subscribes), frames sent, trades sent (in intact frames), unique trades
sent (distinct trade keys over everything sent intact), duplicates, corrupted frames and
the trades they held, drops, completed streams, highest position sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from dataflows.sources.websocket import (
    END_OF_STREAM,
    MAX_FRAME_BYTES,
    PING_INTERVAL_S,
    PING_TIMEOUT_S,
    REPLAY_HEADER,
    USE_AIOFASTNET,
    new_event_loop,
)
from feedhouse.app.session_server.counters import PathStats
from feedhouse.app.session_server.faults import Faults
from feedhouse.app.session_server.peer import Peer, encode_frame
from feedhouse.app.session_server.stream import RecordedStream, load_streams

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
YIELD_EVERY = 256  # at max speed, let other connections run every this many frames
WRITE_EVERY = 64  # at most this many frames joined into one write
PACE_SLACK_S = 0.010  # a frame due within this long goes out now, with those due already
GOING_AWAY_S = 4.0  # at stop, x2: time for the clients to read what was sent (join: 10 s)


def parse_speed(value: str | float | None) -> float | None:
    """'max' (or None) -> None; a positive number -> that factor. Raises ValueError."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "max"):
        return None
    speed = float(value)
    if not speed > 0:
        raise ValueError(f"speed must be > 0 or 'max', got {value!r}")
    return speed


class SessionServer:
    """Serve a folder of captures; `start()` runs it in a background thread."""

    def __init__(
        self,
        captures_dir: Path | str,
        speed: str | float | None = None,
        loop: bool = False,
        faults: Faults | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stats_file: Path | str | None = None,
        subscribe_timeout_s: float = SUBSCRIBE_TIMEOUT_S,
        rebase_now: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.streams = load_streams(Path(captures_dir))
        # rebase_now: serve looped streams from the lap whose event times are "now"
        now = time.time()
        self._first_lap = {
            name: (stream.laps_until(now) if rebase_now and loop else 0)
            for name, stream in self.streams.items()
        }
        self.speed = parse_speed(speed)
        self.loop = loop
        self.faults = faults if isinstance(faults, Faults) else Faults.parse(faults)
        self.host = host
        self.port = port
        self.stats_file = Path(stats_file) if stats_file else None
        self.subscribe_timeout_s = subscribe_timeout_s
        self.ssl_context = ssl_context  # serve wss:// (tests of the clients' TLS)
        self._stats = {name: PathStats() for name in self.streams}
        self._thread: threading.Thread | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._calm = False
        self._error: BaseException | None = None
        self._hold: dict[str, int] | None = None  # path -> last position to send (hold())
        self._sending = 0  # frames between the hold check and their count (loop thread)
        self._peers: set[Peer] = set()

    # -- public API --------------------------------------------------------------------

    def url(self, name: str) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, dict]:
        return {name: st.as_dict() for name, st in self._stats.items()}

    def stream_positions(self, name: str) -> int | None:
        """Positions of one lap of a path (None when looping: endless)."""
        return None if self.loop else self.faults.positions_for(len(self.streams[name]))

    def start(self) -> int:
        """Start serving in a background thread; returns the bound port."""
        self._thread = threading.Thread(target=self._run, name="session-server", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self.port

    def calm(self) -> None:
        """Drop no more connections from now on (drills check reconnects without a race)."""
        self._calm = True

    def hold(self) -> None:
        """Send nothing beyond what was sent so far (connections stay open; a client that
        reconnects still gets up to that position again): lets a drill drain exactly."""
        self._hold = {name: st.max_pos for name, st in self._stats.items()}
        # a frame already going out when the hold came is counted once its send returns:
        # wait for it, so stats() read after hold() covers every frame a client can get
        deadline = time.monotonic() + 5.0
        while self._sending and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        if self._aloop is not None and self._stop is not None and not self._aloop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._aloop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.write_stats()

    def __enter__(self) -> SessionServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def write_stats(self) -> None:
        if self.stats_file is None:
            return
        data = {"port": self.port, "written": time.time(), "paths": self.stats()}
        tmp = self.stats_file.with_name(self.stats_file.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.stats_file)

    # -- server thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._aloop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await ws_create_server(
            self._route,
            self.host,
            self.port,
            websocket_handshake_timeout=SUBSCRIBE_TIMEOUT_S,
            enable_auto_ping=True,  # as websockets' server did: drop a client gone silent
            auto_ping_idle_timeout=PING_INTERVAL_S,
            auto_ping_reply_timeout=PING_TIMEOUT_S,
            auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
            max_frame_size=MAX_FRAME_BYTES,
            logger_name="session_server",
            ssl=self.ssl_context,
            use_aiofastnet=USE_AIOFASTNET,
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        writer = asyncio.create_task(self._stats_writer()) if self.stats_file else None
        try:
            await self._stop.wait()
        finally:
            if writer is not None:
                writer.cancel()
            server.close()
            await self._going_away()

    async def _going_away(self) -> None:
        """Stop: every sender writes out the frames it counted as sent, then each client
        gets a close frame (1001) behind its data and time to read it all (as websockets'
        server did): a frame counted as sent must reach a client that keeps reading."""
        peers = list(self._peers)
        tasks = [p.task for p in peers if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(p.close(int(WSCloseCode.GOING_AWAY.value), "", GOING_AWAY_S)
                               for p in peers), return_exceptions=True)

    async def _stats_writer(self) -> None:
        while True:
            await asyncio.to_thread(self.write_stats)
            await asyncio.sleep(1.0)

    def _route(self, request: WSUpgradeRequest) -> WSUpgradeResponseWithListener:
        """The upgrade request: pick the capture by path; `?from=` is the position."""
        target = urlsplit(request.path.decode("latin-1"))
        name = target.path.lstrip("/").split("/", 1)[0]
        refuse, start = None, 0
        if name not in self.streams:
            refuse = (4404, f"no capture named {name!r}")
        else:
            try:
                start = int(parse_qs(target.query).get("from", ["0"])[0])
                if start < 0:
                    raise ValueError
            except ValueError:
                refuse = (4400, "bad 'from' (a position >= 0)")
        peer = Peer(self._connected, name, start, refuse, self._stats.get(name))
        # the header tells the client it may ask ?from=
        response = WSUpgradeResponse.create_101_response(extra_headers={REPLAY_HEADER: "1"})
        return WSUpgradeResponseWithListener(response, peer)

    def _connected(self, peer: Peer) -> None:
        self._peers.add(peer)
        peer.task = asyncio.ensure_future(self._handler(peer))

    async def _handler(self, peer: Peer) -> None:
        try:
            if peer.refuse is not None:
                await peer.close(*peer.refuse)
                return
            stats = self._stats[peer.name]
            stats.connections += 1
            drop = None
            if self.faults.drop_s:
                drop = asyncio.get_running_loop().call_later(
                    self.faults.drop_s, self._drop, peer, stats
                )
            try:
                await self._send_stream(peer, self.streams[peer.name], stats, peer.start)
            finally:
                if drop is not None:
                    drop.cancel()
        finally:
            self._peers.discard(peer)

    def _drop(self, peer: Peer, stats: PathStats) -> None:
        if self._calm:
            return
        stats.drops += 1
        peer.abort()  # like a network failure: no close frame

    async def _send_stream(
        self, peer: Peer, stream: RecordedStream, stats: PathStats, pos: int
    ) -> None:
        out: list[bytes] = []  # wire frames not written yet: due at the same moment

        def flush() -> None:
            if out:
                peer.write(out[0] if len(out) == 1 else b"".join(out))
                out.clear()

        try:
            ended = await self._send_frames(peer, stream, stats, pos, out, flush)
        except asyncio.CancelledError:
            flush()  # stopping: what was counted as sent goes out (`_going_away`)
            raise
        flush()
        if not ended or peer.gone:
            return
        stats.completed += 1
        await peer.close(END_OF_STREAM, "end of capture")

    async def _send_frames(self, peer: Peer, stream: RecordedStream, stats: PathStats,
                           pos: int, out: list[bytes], flush) -> bool:
        """Send from `pos` on; True when the (finite) stream is over."""
        faults, speed, n = self.faults, self.speed, len(stream)
        first_lap = self._first_lap[stream.name]
        end = None if self.loop else faults.positions_for(n)
        must_wait = stream.expects_subscribe
        clock = asyncio.get_running_loop().time
        anchor: tuple[float, float] | None = None
        sent = 0
        while end is None or pos < end:
            if peer.gone:
                return False
            if self._hold is not None and pos > self._hold.get(stream.name, -1):
                flush()
                await asyncio.sleep(0.05)  # held: idle, connection kept
                continue
            g, copy = faults.base_of(pos)
            if must_wait and g >= stream.greeting:
                flush()
                try:
                    await asyncio.wait_for(peer.subscribed.wait(), self.subscribe_timeout_s)
                except TimeoutError:
                    await peer.close(4408, "no subscribe received")
                    return False
                if peer.gone:
                    return False  # the client went away
                must_wait, anchor = False, None
            if speed is not None:
                recorded = stream.time_of(g)
                if anchor is None:
                    anchor = (clock(), recorded)
                due = anchor[0] + (recorded - anchor[1]) / speed
                if due - clock() > PACE_SLACK_S:
                    flush()
                    # until it is within the slack, not exactly due: the loop's timers
                    # tick in ms, and a shorter sleep would spin (seen: 7.6k wakes/s)
                    while not peer.gone and (delay := due - clock()) > PACE_SLACK_S:
                        await asyncio.sleep(min(delay, 0.1))  # stop soon once it is gone
                    if peer.gone:
                        return False
            corrupt = faults.corrupts(g)
            at = time.time() if first_lap else None
            if corrupt:
                wire = encode_frame(faults.corrupt_frame(stream.frame(g + first_lap * n, at), g))
            else:
                wire = stream.wire_of(g + first_lap * n, at)
            self._sending += 1  # before the check: hold() waits for frames already going out
            try:
                if self._hold is not None and pos > self._hold.get(stream.name, -1):
                    continue  # held while pacing
                out.append(wire)
                stats.count(stream, pos, g, copy, corrupt)
            finally:
                self._sending -= 1
            pos += 1
            sent += 1
            if len(out) >= WRITE_EVERY or speed is None and sent % YIELD_EVERY == 0:
                flush()
                if not peer.writable.is_set():
                    await peer.writable.wait()  # the client reads slower: TCP pushes back
                elif sent % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        return True
