"""Replay server: recorded exchange sessions over real WebSocket connections on loopback.

Each capture file of a folder is one endpoint, `ws://127.0.0.1:PORT/<file name>` (any
further path and query, e.g. Binance's `/stream?streams=...`, is accepted). Per
connection the server sends the frames the recorded client got before it sent anything
(greetings), waits for the client's first frame (its subscribe) when the recorded session
sent one, then sends the rest: the recorded acks and data, at the recorded pace x `speed`
or, with speed None ("max"), as fast as the client reads (websockets' write buffer pushes
back). Text frames go out as text, binary ones (HTX gzip) as binary.

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
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from dataflows.sources.websocket import END_OF_STREAM, MAX_FRAME_BYTES, REPLAY_HEADER
from feedhouse.app.session_server.faults import Faults
from feedhouse.app.session_server.stream import RecordedStream, load_streams

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 10.0
YIELD_EVERY = 256  # at max speed, let other connections run every this many frames


@dataclass
class PathStats:
    connections: int = 0
    client_frames: int = 0
    frames_sent: int = 0
    trades_sent: int = 0
    unique_trades_sent: int = 0
    duplicates_sent: int = 0
    corrupted_sent: int = 0
    corrupted_trades: int = 0
    drops: int = 0
    completed: int = 0
    max_pos: int = -1
    _seen: bytearray = field(default_factory=bytearray, repr=False)

    def count(self, stream: RecordedStream, pos: int, g: int, copy: bool, corrupt: bool):
        self.frames_sent += 1
        if pos > self.max_pos:
            self.max_pos = pos
        if copy:
            self.duplicates_sent += 1
        lap, i = divmod(g, len(stream))
        keys = stream.keys[i]
        if corrupt:
            self.corrupted_sent += 1
            self.corrupted_trades += len(keys)
            return
        if not keys:
            return
        self.trades_sent += len(keys)
        base, seen = stream.key_base(lap), self._seen
        for key in keys:
            bit = base + key
            byte = bit >> 3
            if byte >= len(seen):
                seen.extend(bytes(byte - len(seen) + 4096))
            mask = 1 << (bit & 7)
            if not seen[byte] & mask:
                seen[byte] |= mask
                self.unique_trades_sent += 1

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("_seen")
        return data


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
        self._stats = {name: PathStats() for name in self.streams}
        self._thread: threading.Thread | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._calm = False
        self._error: BaseException | None = None
        self._hold: dict[str, int] | None = None  # path -> last position to send (hold())
        self._sending = 0  # frames between the hold check and their count (loop thread)

    # -- public API --------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"ws://{self.host}:{self.port}/{name}"

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
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._aloop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server: Server = await serve(
            self._handler,
            self.host,
            self.port,
            process_response=self._mark_replay,
            compression=None,  # loopback: deflate would only burn CPU on both ends
            max_size=MAX_FRAME_BYTES,
            write_limit=2**20,
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
            await server.wait_closed()

    async def _stats_writer(self) -> None:
        while True:
            await asyncio.to_thread(self.write_stats)
            await asyncio.sleep(1.0)

    @staticmethod
    def _mark_replay(connection, request, response):
        response.headers[REPLAY_HEADER] = "1"  # tells the client it may ask ?from=
        return response

    async def _handler(self, ws: ServerConnection) -> None:
        target = urlsplit(ws.request.path if ws.request else "/")
        name = target.path.lstrip("/").split("/", 1)[0]
        stream = self.streams.get(name)
        if stream is None:
            await ws.close(4404, f"no capture named {name!r}")
            return
        try:
            start = int(parse_qs(target.query).get("from", ["0"])[0])
            if start < 0:
                raise ValueError
        except ValueError:
            await ws.close(4400, "bad 'from' (a position >= 0)")
            return
        stats = self._stats[name]
        stats.connections += 1
        subscribed = asyncio.Event()
        reader = asyncio.create_task(self._read_client(ws, stats, subscribed))
        drop = None
        if self.faults.drop_s:
            drop = asyncio.get_running_loop().call_later(
                self.faults.drop_s, self._drop, ws, stats
            )
        try:
            await self._send_stream(ws, stream, stats, start, subscribed, reader)
        except ConnectionClosed:
            pass
        finally:
            reader.cancel()
            if drop is not None:
                drop.cancel()

    def _drop(self, ws: ServerConnection, stats: PathStats) -> None:
        if self._calm:
            return
        stats.drops += 1
        ws.transport.abort()  # like a network failure: no close frame

    @staticmethod
    async def _read_client(ws: ServerConnection, stats: PathStats, subscribed) -> None:
        try:
            async for _ in ws:
                stats.client_frames += 1
                subscribed.set()
        except ConnectionClosed:
            pass
        finally:
            subscribed.set()  # wake the sender; it sees the reader is done

    async def _send_stream(
        self,
        ws: ServerConnection,
        stream: RecordedStream,
        stats: PathStats,
        pos: int,
        subscribed: asyncio.Event,
        reader: asyncio.Task,
    ) -> None:
        faults, speed, n = self.faults, self.speed, len(stream)
        first_lap = self._first_lap[stream.name]
        end = None if self.loop else faults.positions_for(n)
        must_wait = stream.expects_subscribe
        clock = asyncio.get_running_loop().time
        anchor: tuple[float, float] | None = None
        sent = 0
        while end is None or pos < end:
            if self._hold is not None and pos > self._hold.get(stream.name, -1):
                await asyncio.sleep(0.05)  # held: idle, connection kept
                continue
            g, copy = faults.base_of(pos)
            if must_wait and g >= stream.greeting:
                try:
                    await asyncio.wait_for(subscribed.wait(), self.subscribe_timeout_s)
                except TimeoutError:
                    await ws.close(4408, "no subscribe received")
                    return
                if reader.done():
                    return  # the client went away
                must_wait, anchor = False, None
            if speed is not None:
                recorded = stream.time_of(g)
                if anchor is None:
                    anchor = (clock(), recorded)
                delay = anchor[0] + (recorded - anchor[1]) / speed - clock()
                if delay > 0:  # wait, but stop as soon as the client is gone
                    await asyncio.wait((reader,), timeout=delay)
                    if reader.done():
                        return
            frame = stream.frame(g + first_lap * n, time.time() if first_lap else None)
            corrupt = faults.corrupts(g)
            if corrupt:
                frame = faults.corrupt_frame(frame, g)
            self._sending += 1  # before the check: hold() waits for frames already going out
            try:
                if self._hold is not None and pos > self._hold.get(stream.name, -1):
                    continue  # held while pacing
                await ws.send(frame)
                stats.count(stream, pos, g, copy, corrupt)
            finally:
                self._sending -= 1
            pos += 1
            sent += 1
            if sent % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        stats.completed += 1
        await ws.close(END_OF_STREAM, "end of capture")
