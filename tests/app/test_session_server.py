"""The replay server over real WebSocket connections on 127.0.0.1 with real captures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from dataflows.venues import get_venue
from feedhouse.app.session_server.faults import Faults
from feedhouse.app.session_server.server import SessionServer, parse_speed
from tests.support.sessions import (  # noqa: F401
    CASES,
    captures_dir,
    folder_fixture,
    recorded_frames,
    server_fixture,
)

FEEDHOUSE = str(Path(sys.executable).parent / "feedhouse")


def receive_all(ws, limit: int | None = None) -> tuple[list, int | None]:
    """Frames until the server closes (or `limit`); returns (frames, close code)."""
    frames = []
    try:
        while limit is None or len(frames) < limit:
            frames.append(ws.recv(timeout=10))
    except ConnectionClosed as exc:
        return frames, exc.rcvd.code if exc.rcvd else None
    return frames, None


def test_waits_for_the_subscribe_then_sends_acks_and_frames(server: SessionServer) -> None:
    name = "KRAKEN.ws.48.0"
    with connect(server.url(name)) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)  # the recorded session sent first: nothing yet
        ws.send(get_venue("kraken").subscribe(["XMR-USD"], ["trades"])[0])
        frames, code = receive_all(ws)
    assert frames == recorded_frames(name)
    assert code == 4000
    stats = server.stats()[name]
    assert stats["client_frames"] == 1 and stats["completed"] >= 1


def test_subscription_in_the_url_starts_at_once(server: SessionServer) -> None:
    # Binance: the subscription is the URL (venue.url_for adds /stream?streams=...)
    venue = get_venue("binance_futures")
    url = venue.url_for(server.url("BINANCE_FUTURES.ws.1.0"), ["SUSHI-USDT"], ["trades"])
    with connect(url) as ws:
        frames, code = receive_all(ws)
    assert frames == recorded_frames("BINANCE_FUTURES.ws.1.0")
    assert code == 4000


def test_from_resumes_at_that_position(server: SessionServer) -> None:
    with connect(server.url("OKX.ws.1.0") + "?from=100") as ws:
        ws.send(get_venue("okx").subscribe(["BTC-USDT"], ["trades"])[0])
        frames, _ = receive_all(ws)
    assert frames == recorded_frames("OKX.ws.1.0")[100:]


def test_gzip_frames_go_out_as_binary_messages(server: SessionServer) -> None:
    with connect(server.url("HUOBI.ws.44.0")) as ws:
        ws.send(get_venue("huobi").subscribe(["BTC-USDT"], ["trades"])[0])
        frames, _ = receive_all(ws)
    assert frames == recorded_frames("HUOBI.ws.44.0")
    assert frames and all(isinstance(f, bytes) and f[:2] == b"\x1f\x8b" for f in frames)


def test_unknown_path_and_bad_position_are_refused(server: SessionServer) -> None:
    with connect(server.url("NOPE.ws")) as ws:
        assert receive_all(ws) == ([], 4404)
    with connect(server.url("OKX.ws.1.0") + "?from=-3") as ws:
        assert receive_all(ws) == ([], 4400)


@pytest.mark.parametrize("name", sorted(set(CASES) - {"HUOBI.ws.44.0"}))
def test_loop_laps_carry_new_unique_trades(folder: Path, name: str) -> None:
    venue_name, symbols, channels = CASES[name]
    venue = get_venue(venue_name)
    laps = 3
    with SessionServer(folder, speed="max", loop=True) as srv:
        stream = srv.streams[name]
        url = srv.url(name)
        if venue.url_for is not None:
            url = venue.url_for(url, symbols, channels)
        # close_timeout: we stop reading mid-stream, so the close reply is never seen
        with connect(url, close_timeout=0.1) as ws:
            for frame in venue.subscribe(symbols, channels):
                ws.send(frame)
            frames, code = receive_all(ws, limit=laps * len(stream))
        stats = srv.stats()[name]
    assert code is None  # a looping stream never ends
    keys = []
    for frame in frames:
        result = venue.parse(frame, 0)
        assert not result.invalid, result.invalid[:1]
        keys.extend((t.symbol, t.trade_id) for t in result.trades)
    assert stream.n_keys > 0
    assert len(keys) == laps * stream.n_keys
    assert len(set(keys)) == len(keys)  # every lap: new trade ids
    assert stats["unique_trades_sent"] >= laps * stream.n_keys
    assert stats["unique_trades_sent"] <= stats["trades_sent"]


def test_duplicates_and_corruption_are_deterministic_and_counted(folder: Path) -> None:
    name = "COINBASE.ws.28.0"
    faults = Faults.parse("dup=0.02,corrupt=0.01")
    recorded = recorded_frames(name)
    with SessionServer(folder, speed="max", faults=faults) as srv:
        with connect(srv.url(name)) as ws:
            ws.send(get_venue("coinbase").subscribe(["SKL-USD"], ["trades"])[0])
            frames, code = receive_all(ws)
        stats = srv.stats()[name]
    assert code == 4000
    positions = faults.positions_for(len(recorded))
    assert len(frames) == positions == stats["frames_sent"]
    assert stats["duplicates_sent"] == positions - len(recorded) > 0
    expected = []
    for pos in range(positions):
        g, _ = faults.base_of(pos)
        frame = recorded[g]
        expected.append(faults.corrupt_frame(frame, g) if faults.corrupts(g) else frame)
    assert frames == expected
    corrupted = sum(1 for g in range(len(recorded)) if faults.corrupts(g))
    assert corrupted > 0 and stats["corrupted_sent"] >= corrupted
    venue = get_venue("coinbase")
    intact = {(t.symbol, t.trade_id) for f in frames for t in venue.parse(f, 0).trades}
    assert stats["unique_trades_sent"] == len(intact)


def test_speed_follows_the_recorded_pace(folder: Path) -> None:
    name = "OKX.ws.1.0"  # ~11 s recorded
    with SessionServer(folder, speed=40) as srv:
        stream = srv.streams[name]
        started = time.monotonic()
        with connect(srv.url(name)) as ws:
            ws.send(get_venue("okx").subscribe(["BTC-USDT"], ["trades"])[0])
            frames, _ = receive_all(ws)
        elapsed = time.monotonic() - started
    recorded_after_subscribe = stream.offsets[-1] - stream.offsets[stream.greeting]
    assert len(frames) == len(stream)
    assert elapsed >= 0.8 * recorded_after_subscribe / 40


def test_speed_parsing() -> None:
    assert parse_speed("max") is None and parse_speed("2.5") == 2.5
    with pytest.raises(ValueError):
        parse_speed("0")
    with pytest.raises(ValueError):
        Faults.parse("drop=fast")


@pytest.mark.integration
def test_cli_serves_on_a_free_port_and_writes_stats(folder: Path, tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [
            FEEDHOUSE,
            "session-server",
            "--captures",
            str(folder),
            "--port",
            "0",
            "--speed",
            "max",
            "--stats-file",
            str(stats_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        for line in proc.stdout:
            if line.startswith("port "):
                port = int(line.split()[1])
                break
        assert port, proc.stderr.read()
        venue = get_venue("binance_futures")
        url = venue.url_for(f"ws://127.0.0.1:{port}/BINANCE_FUTURES.ws.1.0", ["X-USDT"], ["trades"])
        with connect(url) as ws:
            frames, code = receive_all(ws)
        assert len(frames) == len(recorded_frames("BINANCE_FUTURES.ws.1.0")) and code == 4000
        deadline = time.monotonic() + 5
        while True:
            data = json.loads(stats_file.read_text()) if stats_file.exists() else {}
            path = data.get("paths", {}).get("BINANCE_FUTURES.ws.1.0", {})
            if path.get("completed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert data["port"] == port
        assert path["frames_sent"] == len(frames)
        assert path["trades_sent"] == path["unique_trades_sent"] == 91
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


@pytest.mark.integration
def test_rebase_now_serves_live_looking_trades(tmp_path) -> None:
    """--now: a years-old recording is served with event times of now, new ids."""
    import asyncio
    import time

    from websockets.asyncio.client import connect as ws_connect

    from dataflows.venues import get_venue
    from feedhouse.app.session_server.server import SessionServer
    from feedhouse.core.records import us_from_s

    folder = tmp_path / "caps"
    folder.mkdir()
    from tests.support.paths import corpus

    (folder / "BITSTAMP.ws.1.0").symlink_to(corpus("BITSTAMP.ws.1.0"))
    venue = get_venue("bitstamp")
    with SessionServer(folder, speed="max", loop=True, rebase_now=True) as server:

        async def first_trades() -> list:
            trades = []
            async with ws_connect(server.url("BITSTAMP.ws.1.0")) as ws:
                for frame in venue.subscribe(["BTC-USD", "ETH-USD"], ["trades"]):
                    await ws.send(frame)
                while len(trades) < 3:
                    frame = await asyncio.wait_for(ws.recv(), 10)
                    trades += venue.parse(frame, us_from_s(time.time())).trades
            return trades

        trades = asyncio.run(first_trades())
    # served as fast as read, yet stamped with the time they were sent (the recording's
    # own exchange-vs-receive skew, tens of ms, is kept)
    for trade in trades:
        assert abs(trade.received_ts - trade.exchange_ts) < 2_000_000, trade
