"""Looped book sessions as the demo serves them (issue 21): laps from "now" on, sent ~23x
faster than recorded. `book_at` rebuilds a book by event time from the last snapshot, so
a snapshot must sort, by event time, after every update of its symbol sent before it and
before every update sent after it -- across laps too. Bybit's legacy snapshots carry
their book's last change (seconds before the recording's first frame on a quiet symbol)
and Coinbase's carry no time at all: both once mixed laps, which crossed the books."""

from __future__ import annotations

import time

import pytest

from dataflows.books.live import BookFeed
from dataflows.books.parsers import book_parser
from feedhouse.app.session_server.stream import RecordedStream
from tests.support.paths import corpus

SPEED = 23.0  # the demo's pace over the recordings (400 trades/s)
STARTUP_S = 10.0  # the run connects this long after the server picked its first lap
LAPS = 3


@pytest.mark.parametrize("name", ["COINBASE.ws.28.0", "BYBIT.ws.25.0", "OKX.ws.1.0"])
def test_every_snapshot_sorts_between_the_updates_sent_around_it(name):
    stream = RecordedStream.load(corpus(name))
    parse = book_parser(stream.venue.name, stream.venue.key)  # one per feed, as live
    now = time.time()
    first = stream.laps_until(now) * len(stream)
    events: dict[str, list[tuple[bool, int, bool]]] = {}  # symbol -> (snapshot, ts, timeless)
    for g in range(first, first + LAPS * len(stream)):
        received = now + STARTUP_S + (stream.time_of(g) - stream.time_of(first)) / SPEED
        received_us = int(received * 1e6)
        try:
            found = parse(stream.frame(g, at=received), received_us)
        except Exception:  # noqa: BLE001 - acks, pongs and other frames without a book
            continue
        for f in found:
            events.setdefault(f.symbol, []).append(
                (f.is_snapshot, f.exchange_ts, f.exchange_ts == received_us))
    assert len(events) >= 2
    checked = 0
    for symbol, evs in events.items():
        updates = [ts for snap, ts, _ in evs if not snap]
        before, seen = [], -1
        for snap, ts, _ in evs:  # newest update time sent before each event
            before.append(seen)
            if not snap:
                seen = max(seen, ts)
        after, low = [0] * len(evs), float("inf")
        for i in range(len(evs) - 1, -1, -1):  # earliest update time sent after each event
            after[i] = low
            if not evs[i][0]:
                low = min(low, evs[i][1])
        snapshots = [i for i, (snap, _, _) in enumerate(evs) if snap]
        assert len(snapshots) >= LAPS and updates, symbol
        for n, i in enumerate(snapshots):
            if n == 0 and evs[i][2]:
                continue  # a first snapshot without a time is stamped when received
            ts = evs[i][1]
            assert before[i] < ts <= after[i], (symbol, n, before[i], ts, after[i])
            checked += 1
    assert checked >= LAPS - 1


def test_kraken_book_laps_keep_the_wire_text_so_every_checksum_holds():
    """Kraken's checksum is over its numbers' wire spelling (0.5660, 148.34640000): a lap
    decoded and encoded again would spell them 0.566 / 148.3464 and fail every checksum.
    Laps move the book items' times by the lap span and leave the levels as recorded."""
    stream = RecordedStream.load(corpus("docs/KRAKEN_BOOK.ws.docs"))
    n, feed = len(stream), BookFeed("kraken-laps", "kraken")
    times = []
    for lap in range(LAPS):
        frames = [stream.frame(lap * n + i) for i in range(n)]
        if lap:
            assert "148.34640000" in next(f for f in frames if '"type":"snapshot"' in f)
        batch = feed.apply([(1_700_000_000_000_000 + lap * n + i, f) for i, f in enumerate(frames)])
        assert batch.gaps == [] and batch.invalid == []
        times.append([f.exchange_ts for f in batch.columns.frames])
    state = feed.books.state("kraken", "MATIC-USD")
    assert state.passed == state.checked == 4 * LAPS
    step = int(stream.span_s * 1e6)
    assert [t - step for t in times[1]] == times[0] and [t - step for t in times[2]] == times[1]
