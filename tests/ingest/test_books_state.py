"""Book state: snapshots and updates applied in order, OKX checksums proven on the recorded
frames, breaks (sequence gap, checksum mismatch) reported and the book unsynced until the
next snapshot; properties checked with hypothesis against a plain dict model."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.books import checksum
from dataflows.books.columns import BookFrame
from dataflows.books.parsers import book_parser
from dataflows.books.state import GAP, MISMATCH, Books, BookState
from tests.support.paths import corpus


def _frame(bids, asks, snapshot=False, uid=0, prev=0, venue="okx", cs=None) -> BookFrame:
    return BookFrame(venue, "BTC-USDT", "BTC-USDT", "spot", 1, 1, snapshot, uid, prev,
                     bids, asks, cs)


def _okx_frames():
    parse = book_parser("okx")
    for line in corpus("OKX.ws.1.0").read_text().splitlines():
        head, sep, payload = line.partition(": ")
        if sep and head[:1].isdigit():
            yield from parse(payload, 0)


def test_every_recorded_okx_checksum_is_proven():
    books = Books()
    frames = list(_okx_frames())
    breaks = books.apply(frames)
    assert breaks == []
    with_checksum = sum(1 for f in frames if f.checksum is not None)
    assert with_checksum == len(frames) == 290
    assert sum(s.passed for s in books.states.values()) == with_checksum
    assert all(s.synced and not s.crossed() for s in books.states.values())


def test_a_lost_update_is_a_checksum_mismatch_and_unsyncs_until_the_next_snapshot():
    frames = [f for f in _okx_frames() if f.symbol == "BTC-USDT"]
    state = BookState("okx", "BTC-USDT")
    state.apply(frames[0])
    assert state.apply(frames[2]).reason == MISMATCH  # frames[1] lost
    assert not state.synced
    assert state.apply(frames[3]) is None  # unsynced: not checked, not applied
    assert state.checked == 2
    assert state.apply(frames[0]) is None and state.synced  # a snapshot resyncs


def test_okx_checksum_of_the_documented_shape():
    # interleaved bid/ask, a shorter side stops contributing, signed 32-bit
    text = "3366.1:7:3366.8:9:3366:6"
    import zlib
    expected = zlib.crc32(text.encode())
    expected -= (1 << 32) if expected >= 1 << 31 else 0
    assert checksum.okx([("3366.1", "7"), ("3366", "6")], [("3366.8", "9")]) == expected


def test_kraken_checksum_strips_dots_and_leading_zeros():
    import zlib
    asks, bids = [("0.05005", "0.00000500")], [("0.05000", "0.00000500")]
    assert checksum.kraken(bids, asks) == zlib.crc32(b"50055005000500")


def test_sequence_gap_binance_spot_and_usdm_rules():
    state = BookState("binance", "NKN-USDT")
    assert state.apply(_frame([["1", "1"]], [], uid=10, prev=7, venue="binance")) is None
    assert state.apply(_frame([], [], uid=12, prev=10, venue="binance")) is None
    gap = state.apply(_frame([], [], uid=20, prev=15, venue="binance"))
    assert (gap.reason, gap.missing, gap.detail) == (GAP, 3, "update 15 follows 12")
    # a REST snapshot (lastUpdateId 30) then the first event overlapping it, then a stale one
    assert state.apply(_frame([["1", "2"]], [["2", "1"]], True, uid=30, venue="binance")) is None
    assert state.apply(_frame([], [], uid=29, prev=25, venue="binance")) is None  # stale
    assert state.apply(_frame([["1", "0"]], [], uid=33, prev=27, venue="binance")) is None
    assert state.synced and state.bids == {} and state.stale == 1
    assert state.apply(_frame([], [], uid=40, prev=34, venue="binance")).reason == GAP
    assert not state.synced


prices = st.integers(min_value=1, max_value=400).map(lambda p: f"{p / 4:g}")
sizes = st.sampled_from(["0", "0.5", "1", "2.25", "10"])
levels = st.lists(st.tuples(prices, sizes), max_size=30)


def _model(book: dict, updates) -> dict:
    book = dict(book)
    for price, size in updates:
        if float(size) == 0:
            book.pop(float(price), None)
        else:
            book[float(price)] = (price, size)
    return book


def _snapshot_of(bids: dict, asks: dict) -> BookFrame:
    return _frame([list(v) for v in bids.values()], [list(v) for v in asks.values()], True,
                  cs=checksum.okx([bids[p] for p in sorted(bids, reverse=True)[:25]],
                                  [asks[p] for p in sorted(asks)[:25]]))


@settings(max_examples=150, deadline=None)
@given(bids=levels, asks=levels, updates=st.lists(st.tuples(levels, levels), max_size=12))
def test_snapshot_then_updates_equals_the_next_snapshot(bids, asks, updates):
    """What the venue's checksum describes after each update (the dict model's top 25) is
    what the state holds; and the state after all updates equals the next snapshot."""
    bid_book = _model({}, [lv for lv in bids if float(lv[1]) > 0])
    ask_book = _model({}, [lv for lv in asks if float(lv[1]) > 0])
    state = BookState("okx", "BTC-USDT")
    assert state.apply(_snapshot_of(bid_book, ask_book)) is None
    for bid_updates, ask_updates in updates:
        bid_book, ask_book = _model(bid_book, bid_updates), _model(ask_book, ask_updates)
        venue_sum = _snapshot_of(bid_book, ask_book).checksum
        found = state.apply(_frame([list(u) for u in bid_updates], [list(u) for u in ask_updates],
                                   cs=venue_sum))
        assert found is None
    assert state.synced
    next_snapshot = BookState("okx", "BTC-USDT")
    next_snapshot.apply(_snapshot_of(bid_book, ask_book))
    assert (state.bids, state.asks) == (next_snapshot.bids, next_snapshot.asks)
    assert state.top(5) == next_snapshot.top(5)


@settings(max_examples=100, deadline=None)
@given(bids=levels, updates=st.lists(levels, min_size=1, max_size=8), cut=st.integers(0, 7))
def test_a_synced_book_always_equals_the_venues_top_levels(bids, updates, cut):
    """One update lost: as long as the state says synced, its top 25 levels are the
    venue's; once they differ, the checksum has unsynced it (reason: checksum mismatch)."""
    truth = _model({}, [lv for lv in bids if float(lv[1]) > 0])
    state = BookState("okx", "BTC-USDT")
    state.apply(_snapshot_of(truth, {}))
    cut = cut % len(updates)
    for i, update in enumerate(updates):
        truth = _model(truth, update)
        frame = _frame([list(u) for u in update], [], cs=_snapshot_of(truth, {}).checksum)
        if i == cut:
            continue  # lost on the way
        found = state.apply(frame)
        top = sorted(truth, reverse=True)[:25]
        if state.synced:
            assert found is None
            assert sorted(state.bids, reverse=True)[:25] == top
            assert [state.bids[p] for p in top] == [truth[p] for p in top]
        else:
            assert found is None or found.reason == MISMATCH


def test_recorded_binance_frames_keep_their_order_in_json():
    line = next(ln for ln in corpus("BINANCE.ws.1.0").read_text().splitlines() if "depthUpdate" in ln)
    data = json.loads(line.partition(": ")[2])["data"]
    frame = book_parser("binance")(line.partition(": ")[2], 0)[0]
    assert frame.bids == data["b"] and frame.prev_update_id == data["U"] - 1


def test_a_book_kept_to_its_subscribed_depth_drops_the_worst_levels():
    state = BookState("kraken", "BTC-USD", depth=2)
    state.apply(_frame([["10", "1"], ["9", "1"], ["8", "1"]], [["11", "1"], ["12", "1"]], True))
    assert sorted(state.bids) == [9.0, 10.0]
    state.apply(_frame([["9.5", "2"]], [["10.5", "3"], ["11", "0"]]))
    assert state.top(5) == ([(10.0, 1.0), (9.5, 2.0)], [(10.5, 3.0), (12.0, 1.0)])
    assert sorted(state.bids) == [9.5, 10.0] and not state.crossed()
