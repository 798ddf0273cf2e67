"""Binance's REST snapshot sync rule in the book state (dataflows/books/state.py).

Binance ("How to manage a local order book correctly"): drop events with u <= lastUpdateId;
the first applied event has U <= lastUpdateId + 1 <= u (spot; futures: its pu at or before
lastUpdateId); the events that came before the snapshot but are newer than it still apply.
Snapshots here are built from the recordings (tests/support/binance_depth.py), so a synced
book must equal the book every recorded event left.
"""

from __future__ import annotations

import orjson
import pytest

from dataflows.books.columns import BookFrame
from dataflows.books.live import BookFeed
from dataflows.books.parsers import book_parser
from dataflows.books.state import GAP, Books, BookState
from dataflows.frames import Gap, MessageBatch
from dataflows.parse.stage import parse_batch
from tests.support.binance_depth import book_after, depth_events, snapshot_body


def _update(uid: int, prev: int, bids=(), asks=(), venue="binance") -> BookFrame:
    return BookFrame(venue, "NKN-USDT", "NKNUSDT", "spot", uid, uid, False, uid, prev,
                     [list(b) for b in bids], [list(a) for a in asks])


def _snapshot(last: int, bids=(), asks=(), venue="binance") -> BookFrame:
    return BookFrame(venue, "NKN-USDT", "NKNUSDT", "spot", 1, 1, True, last, 0,
                     [list(b) for b in bids], [list(a) for a in asks])


def test_updates_newer_than_a_late_snapshot_are_applied_and_the_next_one_follows():
    state = BookState("binance", "NKN-USDT")
    assert state.apply(_update(12, 10, bids=[("1.0", "5")])) is None  # U=11..u=12
    assert state.apply(_update(15, 12, bids=[("1.1", "6")])) is None  # U=13..u=15
    assert state.apply(_update(18, 15, asks=[("2.0", "7")])) is None  # U=16..u=18
    assert not state.synced
    # the snapshot at 14 holds 1.0 (u=12) but not 2.0; 13..15 overlaps it
    assert state.apply(_snapshot(14, bids=[("1.0", "5"), ("0.9", "1")])) is None
    assert state.synced and state.last_id == 18
    assert state.bids == {1.1: ("1.1", "6"), 1.0: ("1.0", "5"), 0.9: ("0.9", "1")}
    assert state.asks == {2.0: ("2.0", "7")}
    # the next event follows the last applied one, not the snapshot: no false gap
    assert state.apply(_update(19, 18, bids=[("0.9", "0")])) is None
    assert state.synced and 0.9 not in state.bids


def test_stale_events_are_dropped_and_the_first_overlaps_the_snapshot():
    state = BookState("binance", "NKN-USDT")
    assert state.apply(_snapshot(20, bids=[("1.0", "5")])) is None
    assert state.apply(_update(20, 17, bids=[("1.0", "9")])) is None  # u <= lastUpdateId
    assert state.stale == 1 and state.bids[1.0] == ("1.0", "5")
    assert state.apply(_update(23, 18, bids=[("1.0", "8")])) is None  # U=19 <= 21 <= u=23
    assert state.synced and state.bids[1.0] == ("1.0", "8")


def test_a_gap_after_the_snapshot_unsyncs_and_a_newer_snapshot_resyncs():
    state = BookState("binance", "NKN-USDT")
    state.apply(_snapshot(20))
    state.apply(_update(23, 20))
    gap = state.apply(_update(30, 25))  # 24..25 missing
    assert (gap.reason, gap.missing, gap.detail) == (GAP, 2, "update 25 follows 23")
    assert not state.synced
    assert state.apply(_update(33, 30)) is None  # unsynced: followed, no second break
    assert state.apply(_snapshot(31)) is None  # newer than the gap: the chain reaches it
    assert state.synced and state.last_id == 33


def test_a_snapshot_older_than_the_updates_kept_is_a_gap():
    state = BookState("binance", "NKN-USDT")
    state.apply(_update(110, 99))  # the stream's first event: U=100
    state.apply(_update(120, 110))
    gap = state.apply(_snapshot(50))  # Binance: lastUpdateId < U of the first event
    assert gap.reason == GAP and gap.missing == 49 and not state.synced
    assert state.apply(_snapshot(115)) is None and state.synced and state.last_id == 120


def test_a_new_connection_starts_a_new_chain_without_a_gap():
    books = Books(levels=False)
    assert books.apply([_update(12, 10), _update(15, 12)]) == []
    books.disconnected()
    assert books.apply([_update(900, 880)]) == []  # far from 15: a new stream, not a gap
    assert books.apply([_snapshot(890)]) == []
    assert books.state("binance", "NKN-USDT").synced


@pytest.mark.parametrize("name,venue,futures", [
    ("BINANCE.ws.1.0", "binance", False),
    ("BINANCE_FUTURES.ws.1.0", "binance_futures", True),
])
def test_recorded_updates_with_a_snapshot_in_the_middle_end_synced_equal_to_the_stream(
        name, venue, futures):
    """Every symbol: a snapshot at its k-th event arrives after all its events (as a slow
    REST reply would): stale ones are dropped, the newer ones applied on top."""
    parse = book_parser(venue)
    books = Books()
    events = depth_events(name)
    for native, mine in events.items():
        k = len(mine) // 3
        frames = [parse(_wrapped(e), 0)[0] for e in mine]
        body = snapshot_body(mine, k, futures).decode()
        snapshot = parse(f'{{"stream":"{native.lower()}@depthSnapshot","data":{body}}}', 7)
        assert snapshot[0].is_snapshot and snapshot[0].update_id == mine[k]["u"]
        assert books.apply(frames + snapshot) == []
        state = books.state(venue, frames[0].symbol)
        bids, asks = book_after(mine)
        assert state.synced and state.last_id == mine[-1]["u"], native
        assert (state.bids, state.asks) == (bids, asks), native
        # a later update follows the last recorded one
        assert books.apply([frames[-1]._replace(update_id=mine[-1]["u"] + 5,
                                                prev_update_id=mine[-1]["u"])]) == []
        assert state.synced


def _wrapped(data: dict) -> str:
    return orjson.dumps({"stream": "x@depth@100ms", "data": data}).decode()


def test_a_batch_spanning_a_reconnect_follows_each_connection_on_its_own():
    """The frames a batch holds from before the reconnect (received before the disconnect
    gap's end) are followed first; the new connection's ids start a new chain: no gap."""
    def depth(first: int, last: int, received: int) -> tuple[int, str]:
        return received, orjson.dumps({"stream": "nknusdt@depth@100ms", "data": {
            "e": "depthUpdate", "E": 1633998512000, "s": "NKNUSDT", "U": first, "u": last,
            "b": [["0.35", "1"]], "a": []}}).decode()

    feed = BookFeed("bn", "binance")
    messages = [depth(11, 12, 100), depth(13, 15, 200), depth(900, 905, 400)]
    gap = Gap("bn", "binance", 250, 300, "disconnect", "connection lost (no close frame)")
    parsed = parse_batch(MessageBatch("bn", "binance", "bn", 0, messages, [gap]), books=feed)
    assert parsed.gaps == [gap]
    state = feed.books.state("binance", "NKN-USDT")
    assert state.last_id == 905 and not state.synced
    # the same frames as one connection: the jump is a gap
    feed = BookFeed("bn2", "binance")
    parsed = parse_batch(MessageBatch("bn2", "binance", "bn2", 0, messages, []), books=feed)
    assert [g.kind for g in parsed.gaps] == ["sequence"]
