"""The exchange source (WebSocket client + Bytewax partition) against the replay server.

Real WebSockets on 127.0.0.1, real captures, the adapters' real subscribe handshakes.
"""

from __future__ import annotations

import gc
import random
import socket
import threading
import time
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from dataflows.frames import MessageBatch
from dataflows.sources.capture import parse_capture, read_capture
from dataflows.sources.exchange import ExchangeSource, FeedPartition
from dataflows.sources.sequence import SequenceTracker
from dataflows.sources.websocket import Backoff
from dataflows.venues import get_venue
from feedhouse.app.session_server.faults import Faults
from feedhouse.app.session_server.server import SessionServer
from feedhouse.core.records import ParseResult
from tests.support.paths import corpus
from tests.support.sessions import (
    CASES,
    drain,
    feed_for,
    folder_fixture,  # noqa: F401
    frames_sent_once_held,
    recorded_frames,
    server_fixture,  # noqa: F401
    trade_rows,
)

FAST = {"reconnect_initial_s": 0.02, "reconnect_max_s": 0.2}


def parse_all(venue_name: str, frames) -> ParseResult:
    venue, total = get_venue(venue_name), ParseResult()
    for ts, frame in frames:
        total.extend(venue.parse(frame, ts))
    return total


@pytest.mark.parametrize("name", sorted(CASES))
def test_source_yields_the_recorded_frames_and_the_golden_trades(
    server: SessionServer, name: str
) -> None:
    feed = feed_for(server, name, feed_name=f"f_{name.split('.')[0].lower()}")
    source = ExchangeSource([feed], None)
    assert source.list_parts() == [feed.name]
    before = server.stats()[name]
    part = source.build_part("in", feed.name, None)  # connects at once
    try:
        frames, gaps, starts = drain(part)
    finally:
        part.close()
    assert [f for _, f in frames] == recorded_frames(name)
    assert starts[0] == 0 and part.snapshot() == len(frames)
    assert gaps == []
    _, golden, _ = parse_capture(corpus(name))
    parsed = parse_all(feed.venue, frames)
    assert trade_rows(parsed.trades) == trade_rows(golden.trades)
    assert golden.trades, "every case has trades"
    after = server.stats()[name]
    assert after["trades_sent"] - before["trades_sent"] == len(golden.trades)
    assert after["unique_trades_sent"] == len({(t.symbol, t.trade_id) for t in golden.trades})
    assert part.client.stats["connects"] == 1


def test_bytewax_dataflow_runs_the_source_to_the_end(server: SessionServer, settings) -> None:
    names = ["OKX.ws.1.0", "KRAKEN.ws.48.0", "BINANCE_FUTURES.ws.1.0"]
    feeds = [feed_for(server, n) for n in names]
    out: list[MessageBatch] = []
    flow = Dataflow("exchange_source_test")
    stream = op.input("in", flow, ExchangeSource(feeds, settings))
    op.output("out", stream, TestingSink(out))
    run_main(flow)
    assert out and all(isinstance(b, MessageBatch) for b in out)
    for feed, name in zip(feeds, names, strict=True):
        batches = [b for b in out if b.feed == feed.name]
        assert all(b.venue == feed.venue and b.partition == feed.name for b in batches)
        pos = 0
        for batch in batches:  # micro-batches, contiguous positions
            assert batch.first_pos == pos
            pos += len(batch.messages)
        frames = [m for b in batches for m in b.messages]
        assert [f for _, f in frames] == recorded_frames(name)
        _, golden, _ = parse_capture(corpus(name))
        assert trade_rows(parse_all(feed.venue, frames).trades) == trade_rows(golden.trades)


def test_dropped_connections_reconnect_resubscribe_and_resume(folder: Path) -> None:
    name = "COINBASE.ws.28.0"  # ~31 s recorded -> ~1 s at speed 30
    with SessionServer(folder, speed=30, faults="drop=0.25s") as srv:
        feed = feed_for(srv, name, **FAST)
        part = FeedPartition(feed, 0)
        try:
            frames, gaps, _ = drain(part, timeout=30)
        finally:
            part.close()
        stats = srv.stats()[name]
    # every frame exactly once: each reconnect resumed at ?from=<next position>
    assert [f for _, f in frames] == recorded_frames(name)
    disconnects = [g for g in gaps if g.kind == "disconnect"]
    assert len(disconnects) >= 2
    assert stats["drops"] >= len(disconnects)
    assert stats["connections"] == len(disconnects) + 1 == part.client.stats["connects"]
    assert stats["client_frames"] >= stats["connections"]  # resubscribed every time
    for gap in disconnects:
        assert gap.feed == feed.name and gap.venue == "coinbase"
        assert gap.gap_start <= gap.gap_end
        assert gap.reason.startswith("connection lost")


def test_resume_state_restarts_at_that_position(server: SessionServer) -> None:
    name = "OKX.ws.1.0"
    feed = feed_for(server, name)
    part = ExchangeSource([feed], None).build_part("in", feed.name, 150)
    try:
        frames, _, starts = drain(part)
    finally:
        part.close()
    recorded = recorded_frames(name)
    assert starts[0] == 150
    assert [f for _, f in frames] == recorded[150:]
    assert part.snapshot() == len(recorded)


def test_sequence_gaps_are_reported(folder: Path) -> None:
    name = "BINANCE_FUTURES.ws.1.0"
    faults = Faults(corrupt=0.2)
    recorded = recorded_frames(name)
    tracker = SequenceTracker(get_venue("binance").sequence_of)
    expected = [
        j for g, f in enumerate(recorded) if not faults.corrupts(g) for j in tracker.check(f)
    ]
    assert expected
    with SessionServer(folder, speed="max", faults=faults) as srv:
        part = FeedPartition(feed_for(srv, name), 0)
        try:
            frames, gaps, _ = drain(part)
        finally:
            part.close()
    assert len(frames) == len(recorded)
    seq = [g for g in gaps if g.kind == "sequence"]
    assert [g.missing for g in seq] == [got - exp for _, exp, got in expected]
    assert [g.reason.split(":")[0] for g in seq] == [stream for stream, _, _ in expected]


def test_stale_feed_is_reconnected(folder: Path) -> None:
    name = "KRAKEN.ws.48.0"  # trades ~1 s apart; at speed 0.5 a 2 s silence
    with SessionServer(folder, speed=0.5) as srv:
        part = FeedPartition(feed_for(srv, name, stale_s=0.3, **FAST), 0)
        try:
            deadline = time.monotonic() + 15
            gaps = []
            while not gaps and time.monotonic() < deadline:
                for batch in part.next_batch():
                    gaps.extend(batch.gaps)
                time.sleep(0.01)
        finally:
            part.close()
    assert gaps and gaps[0].kind == "disconnect"
    assert gaps[0].reason.startswith("stale: no frame for 0.3s")
    assert srv.stats()[name]["connections"] >= 2


def test_recording_writes_captures_that_parse_and_replay(server: SessionServer, tmp_path) -> None:
    name = "OKX.ws.1.0"
    feed = feed_for(server, name, record_dir=tmp_path / "rec")
    part = FeedPartition(feed, 0)
    try:
        frames, _, _ = drain(part)
    finally:
        part.close()
    files = list((tmp_path / "rec").iterdir())
    assert len(files) == 1 and files[0].name.startswith(f"{feed.name}.")
    events = list(read_capture(files[0]))
    sent = [e.data for e in events if e.kind == "sent"]
    assert sent == get_venue("okx").subscribe(feed.symbols, feed.channels)
    received = [e.data for e in events if e.kind == "received"]
    assert received == [f for _, f in frames]
    venue, result, summary = parse_capture(files[0], "okx")
    _, golden, _ = parse_capture(corpus(name))
    assert trade_rows(result.trades) == trade_rows(golden.trades)
    assert summary.invalid == 0
    # ... and the replay server serves the recording again
    with SessionServer(tmp_path / "rec", speed="max") as again:
        assert again.streams[files[0].name].n_keys == len(golden.trades)


def test_bounded_queue_pushes_back_on_the_server(folder: Path) -> None:
    name = "COINBASE.ws.28.0"
    with SessionServer(folder, speed="max", loop=True) as srv:
        part = FeedPartition(feed_for(srv, name, stale_s=60), 0, queue_frames=200)
        try:
            # Nobody drains: once the queue, websockets' buffer and the socket buffers are
            # full, the server cannot send more (without pushback it sends ~50k frames/s).
            first = frames_sent_once_held(srv, name)
            assert len(part.queue.frames) <= 200
            frames, _, _ = drain(part, limit=first + 1000)
            assert len(frames) >= first + 1000  # draining lets it flow again
            assert srv.stats()[name]["frames_sent"] > first
        finally:
            part.close()


def test_a_dead_venue_does_not_stall_another(server: SessionServer) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead_feed = feed_for(server, "OKX.ws.1.0", feed_name="dead", **FAST)
    dead_feed = dead_feed.model_copy(update={"url": f"ws://127.0.0.1:{dead_port}/x"})
    live_feed = feed_for(server, "KRAKEN.ws.48.0", feed_name="live")
    source = ExchangeSource([dead_feed, live_feed], None)
    dead = source.build_part("in", "dead", None)
    live = source.build_part("in", "live", None)
    try:
        frames, _, _ = drain(live)
        assert [f for _, f in frames] == recorded_frames("KRAKEN.ws.48.0")
        assert dead.next_batch() == [] and dead.client.stats["connects"] == 0
    finally:
        dead.close()
        live.close()


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    caps = [0.5, 1, 2, 4, 4, 4, 4, 4]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 0.5


class _Crash(Exception):
    pass


def test_bytewax_recovery_resumes_the_replay_where_the_snapshot_was(folder: Path, tmp_path):
    from datetime import timedelta

    from bytewax.errors import BytewaxRuntimeError
    from bytewax.recovery import RecoveryConfig, init_db_dir

    name = "COINBASE.ws.28.0"  # ~31 s recorded -> ~1.5 s at speed 20
    recorded = recorded_frames(name)
    db = tmp_path / "recovery"
    db.mkdir()
    init_db_dir(db, 1)
    recovery = RecoveryConfig(db)

    def build(out: list, crash_after: int | None) -> Dataflow:
        flow = Dataflow("exchange_recovery_test")
        stream = op.input("in", flow, ExchangeSource([feed], None))
        seen = [0]

        def maybe_crash(batch: MessageBatch) -> MessageBatch:
            seen[0] += len(batch.messages)
            if crash_after is not None and seen[0] > crash_after:
                raise _Crash("boom")
            return batch

        op.output("out", op.map("crash", stream, maybe_crash), TestingSink(out))
        return flow

    with SessionServer(folder, speed=20) as srv:
        feed = feed_for(srv, name)
        first: list[MessageBatch] = []
        with pytest.raises(BytewaxRuntimeError):
            run_main(build(first, len(recorded) // 2), epoch_interval=timedelta(
                milliseconds=50), recovery_config=recovery)
        gc.collect()  # the aborted run's partition is gone: its client thread stops
        deadline = time.monotonic() + 5
        while any(t.name == f"feed-{feed.name}" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "client thread of the aborted run still runs"
            time.sleep(0.05)
        second: list[MessageBatch] = []
        run_main(build(second, None), epoch_interval=timedelta(milliseconds=50),
                 recovery_config=recovery)
    resumed_at = second[0].first_pos
    assert 0 < resumed_at <= sum(len(b.messages) for b in first)  # from the last snapshot
    frames = [f for b in second for _, f in b.messages]
    assert frames == recorded[resumed_at:]  # the replay server resumed exactly there
