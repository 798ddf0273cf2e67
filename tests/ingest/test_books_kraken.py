"""Kraken books (WS v2 `book`): the subscribe frame, snapshot and update rows, the CRC32
checksum proven on every frame against a book kept per symbol (checksums computed here
with zlib, independently of dataflows/books/checksum.py), the book kept at the subscribed
depth, and a break (checksum mismatch) or an invalid frame on the live path: an
ops.feed_gaps row, the book unsynced, a resync asked for, a dead letter with its reason.

Kraken's recording (KRAKEN.ws.48.0) holds no book frame: the frames here follow Kraken's
documented shapes (docs.kraken.com/api/docs/websocket-v2/book, guides/spot-ws-book-v2),
as does tests/fixtures/venue_docs/KRAKEN_BOOK.ws.docs.
"""

from __future__ import annotations

import json
import zlib

import orjson
import pytest

from dataflows.books.columns import BookColumns
from dataflows.books.live import BookFeed
from dataflows.books.parsers import book_parser
from dataflows.books.resync import take_resync
from dataflows.books.state import MISMATCH, Books, BookState
from dataflows.frames import MessageBatch
from dataflows.parse.stage import parse_batch
from dataflows.venues import VENUES
from dataflows.venues.common import FrameError
from tests.support.ingest import capture_messages

DEPTH = 25  # what feedhouse subscribes


def _text(value: str) -> str:
    return value.replace(".", "").lstrip("0")


def crc(bids: dict[str, str], asks: dict[str, str]) -> int:
    """Kraken's checksum of a book {price text: qty text}, written from its guide: the top
    10 asks low to high, then the top 10 bids high to low, price + qty without '.' and
    leading zeros, CRC32 (unsigned)."""
    top_asks = sorted(asks, key=float)[:10]
    top_bids = sorted(bids, key=float, reverse=True)[:10]
    text = "".join(_text(p) + _text(asks[p]) for p in top_asks)
    text += "".join(_text(p) + _text(bids[p]) for p in top_bids)
    return zlib.crc32(text.encode())


def frame(kind: str, bids, asks, checksum: int, symbol: str = "BTC/USD",
          ts: str | None = "2023-10-06T17:35:55.440295Z") -> str:
    """A v2 book message with the levels as JSON numbers written as given (full precision)."""
    def side(levels):
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels) + "]"
    stamp = f',"timestamp":"{ts}"' if ts else ""
    return (f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{symbol}","bids":{side(bids)},'
            f'"asks":{side(asks)},"checksum":{checksum}{stamp}}}]}}')


SNAP_BIDS = [("45283.5", "0.10000000"), ("45283.4", "1.00000000"), ("45282.1", "0.00100000")]
SNAP_ASKS = [("45285.2", "0.00100000"), ("45286.0", "2.50000000")]


def test_the_books_channel_subscribes_v2_book_at_depth_25():
    frames = VENUES["kraken"].subscribe(["BTC-USD", "MATIC-USD"], ["books"])
    assert frames == ['{"method":"subscribe","params":{"channel":"book",'
                      '"symbol":["BTC/USD","MATIC/USD"],"depth":25}}']
    # trades and quotes keep their frames, without a depth
    both = VENUES["kraken"].subscribe(["BTC-USD"], ["trades", "books"])
    assert '"channel":"trade"' in both[0] and '"depth"' not in both[0]


def test_a_snapshot_and_updates_give_rows_in_base_units_and_a_delete_is_zero():
    parse = book_parser("kraken")
    bids, asks = dict(SNAP_BIDS), dict(SNAP_ASKS)
    texts = [frame("snapshot", SNAP_BIDS, SNAP_ASKS, crc(bids, asks), ts=None)]
    bids["45283.4"] = "0.50000000"
    del asks["45285.2"]
    texts.append(frame("update", [("45283.4", "0.50000000")], [("45285.2", "0.00000000")],
                       crc(bids, asks)))
    frames = [f for t in texts for f in parse(t, 1_696_613_755_300_000)]
    assert [(f.symbol, f.instrument_type, f.is_snapshot) for f in frames] == [
        ("BTC-USD", "spot", True), ("BTC-USD", "spot", False)]
    assert frames[0].exchange_ts == 1_696_613_755_300_000  # no timestamp: the receive time
    assert frames[1].exchange_ts == 1_696_613_755_440_295
    # a snapshot without a time after updates of its symbol: 1 µs after the newest one
    (later,) = parse(frame("snapshot", SNAP_BIDS, [], 0, ts=None), 1_800_000_000_000_000)
    assert later.exchange_ts == 1_696_613_755_440_296
    table = BookColumns.of(frames).to_arrow(feed="kraken")
    rows = table.to_pylist()
    assert [r["is_snapshot"] for r in rows] == [1] * 5 + [0, 0]
    assert [(r["side"], r["price"], r["amount"]) for r in rows[5:]] == [
        ("bid", 45283.4, 0.5), ("ask", 45285.2, 0.0)]
    # spot sizes are BASE as sent: amount = native_amount = qty
    assert [r["amount"] for r in rows] == [r["native_amount"] for r in rows] == [
        0.1, 1.0, 0.001, 0.001, 2.5, 0.5, 0.0]
    books = Books()
    assert books.apply(frames) == []
    state = books.state("kraken", "BTC-USD")
    assert (state.checked, state.passed, state.synced) == (2, 2, True)
    assert state.top(2) == ([(45283.5, 0.1), (45283.4, 0.5)], [(45286.0, 2.5)])


def test_the_checksum_is_over_the_wire_text_at_full_precision():
    """Kraken's guide: the wire carries full precision (0.00100000), decode it with a
    string/decimal decoder. Read as floats the text would be 0.001 and the CRC another."""
    bids, asks = dict(SNAP_BIDS), dict(SNAP_ASKS)
    venue = crc(bids, asks)
    text = frame("snapshot", SNAP_BIDS, SNAP_ASKS, venue)
    (parsed,) = book_parser("kraken")(text, 0)
    assert parsed.bids == [list(level) for level in SNAP_BIDS]  # the wire text, untouched
    state = BookState("kraken", "BTC-USD")
    assert state.apply(parsed) is None and state.passed == 1
    as_floats = orjson.loads(text)["data"][0]  # what a float decoder keeps
    float_bids = {str(lv["price"]): str(lv["qty"]) for lv in as_floats["bids"]}
    float_asks = {str(lv["price"]): str(lv["qty"]) for lv in as_floats["asks"]}
    assert crc(float_bids, float_asks) != venue


def _venue_updates(seed_bids: dict[str, str], changes: list[tuple[str, str]]):
    """Kraken's side of a depth-25 subscription, modelled from its guide: the venue's whole
    bid side changes; the subscriber is sent a level that is new or changed within the top
    25, and qty 0 for a level deleted while in the top 25; a level pushed out of the top 25
    (or deleted while out of it) is not sent. Each message carries the CRC of the venue's
    top 10 (no asks here)."""
    book, view = dict(seed_bids), {}

    def top() -> dict[str, str]:
        return {p: book[p] for p in sorted(book, key=float, reverse=True)[:DEPTH]}

    view = top()
    yield frame("snapshot", list(view.items()), [], crc(view, {}))
    for price, qty in changes:
        if float(qty) == 0:
            book.pop(price, None)
        else:
            book[price] = qty
        now = top()
        sent = [(p, q) for p, q in now.items() if view.get(p) != q]
        sent += [(p, "0.00000000") for p in view if p not in book]
        view = now
        yield frame("update", sent, [], crc(book, {}))


def test_a_book_kept_at_the_subscribed_depth_passes_where_an_untruncated_one_breaks():
    """Bid 1.0200 drops out of the top 25 when better bids arrive (no message), is deleted
    while out of scope (no message), and the top bids are then taken away: a book that kept
    it would show it among the top 10 and fail the checksum."""
    seed = {f"{1 + i / 100:.4f}": "1.00000000" for i in range(2, 40)}  # 1.0200 .. 1.3900
    changes = [(f"{1.40 + i / 100:.4f}", "2.00000000") for i in range(12)]  # 12 better bids
    changes.append(("1.2600", "0.00000000"))  # now 26th: out of scope, deleted
    changes += [(f"{1.40 + i / 100:.4f}", "0.00000000") for i in range(12)]
    changes += [(f"{1.39 - i / 100:.4f}", "0.00000000") for i in range(9)]  # 1.3900 .. 1.3100
    texts = list(_venue_updates(seed, changes))
    frames = [f for t in texts for f in book_parser("kraken")(t, 0)]
    kept = BookState("kraken", "BTC-USD")
    assert kept.depth == DEPTH
    assert [kept.apply(f) for f in frames] == [None] * len(frames)
    assert kept.passed == len(frames) and kept.synced
    assert len(kept.bids) <= DEPTH
    untruncated = BookState("kraken", "BTC-USD", depth=1000)
    found = [b for b in map(untruncated.apply, frames) if b is not None]
    assert [b.reason for b in found] == [MISMATCH]


def _feed_messages():
    return capture_messages("docs/KRAKEN_BOOK.ws.docs")


def test_the_docs_session_on_the_live_parse_path_passes_every_checksum():
    feed = BookFeed("kraken-docs", "kraken")
    parsed = parse_batch(MessageBatch("kraken-docs", "kraken", "p", 0, _feed_messages(), []),
                         books=feed)
    assert parsed.gaps == [] and parsed.dead == []
    assert len(parsed.books) == 19
    state = feed.books.state("kraken", "MATIC-USD")
    assert (state.checked, state.passed, state.synced) == (4, 4, True)
    assert not take_resync("kraken-docs")


def test_a_checksum_mismatch_is_a_feed_gap_unsyncs_and_asks_for_a_resync():
    messages = _feed_messages()
    i = next(j for j, (_ts, raw) in enumerate(messages) if "1098.39475580" in raw)
    ts, raw = messages[i]
    messages[i] = (ts, raw.replace("1098.39475580", "1098.39475581"))  # a size corrupted
    feed = BookFeed("kraken-cs", "kraken")
    parsed = parse_batch(MessageBatch("kraken-cs", "kraken", "p", 0, messages, []), books=feed)
    (gap,) = parsed.gaps
    assert gap.kind == "checksum" and gap.feed == "kraken-cs"
    assert gap.reason.startswith("checksum mismatch: MATIC-USD venue ")
    assert gap.gap_start == gap.gap_end == 1_696_613_755_440_295  # the frame's own time
    assert take_resync("kraken-cs") and not take_resync("kraken-cs")
    state = feed.books.state("kraken", "MATIC-USD")
    assert not state.synced and state.checked == 2  # later updates wait for a snapshot
    # the resubscription's snapshot resyncs the book; its rows are snapshot rows
    snap = next((t, r) for t, r in _feed_messages() if '"type":"snapshot"' in r)
    again = parse_batch(MessageBatch("kraken-cs", "kraken", "p", len(messages), [snap], []),
                        books=feed)
    assert again.gaps == [] and state.synced
    assert set(again.books.frame_field(6, int).tolist()) == {1}


def test_a_malformed_level_is_a_dead_letter_and_the_lost_update_breaks_the_next_checksum():
    messages = _feed_messages()
    i = next(j for j, (_ts, raw) in enumerate(messages) if '"qty":0.00000000}' in raw)
    ts, raw = messages[i]
    messages[i] = (ts, raw.replace('"qty":0.00000000', '"qty":null'))
    feed = BookFeed("kraken-bad", "kraken")
    parsed = parse_batch(MessageBatch("kraken-bad", "kraken", "p", 0, messages, []), books=feed)
    (dead,) = parsed.dead
    assert dead.error.startswith("kraken book: FrameError: bad level {'price': '0.5669'")
    assert '"qty":null' in dead.raw
    # Kraken frames carry checksums: no blanket '*' resync; the next frame's CRC finds the hole
    (gap,) = parsed.gaps
    assert gap.kind == "checksum" and gap.reason.startswith("checksum mismatch: MATIC-USD")
    assert take_resync("kraken-bad")


@pytest.mark.parametrize(("item", "why"), [
    ({"symbol": "BTC/USD", "bids": [["45283.5", "1"]], "asks": [], "checksum": 1}, "bad level"),
    ({"symbol": "BTC/USD", "bids": {}, "asks": [], "checksum": 1}, "bids/asks are not arrays"),
    ({"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": -5}, "bad checksum"),
])
def test_bad_book_items_are_frame_errors_naming_the_field(item, why):
    with pytest.raises(FrameError, match=why):
        book_parser("kraken")(json.dumps({"channel": "book", "type": "update", "data": [item]}), 0)


def test_other_frames_are_not_book_events():
    parse = book_parser("kraken")
    assert parse('{"channel":"heartbeat"}', 0) == []
    assert parse('{"method":"subscribe","result":{"channel":"book","depth":25,'
                 '"symbol":"BTC/USD"},"success":true}', 0) == []
    trade = next(raw for _ts, raw in capture_messages("docs/KRAKEN_V2.ws.docs") if '"trade"' in raw)
    assert parse(trade, 0) == []
    # a price that is no number reaches the columns, which refuse its frame with a reason
    columns = BookColumns.of(parse(frame("update", [('"x"', "1.0")], [], 1), 0))
    assert len(columns) == 0 and "could not convert string to float: 'x'" in columns.rejected[0][1]
