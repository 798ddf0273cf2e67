"""Book parsers on the recorded sessions: every level update of every book frame comes out
as a column row, checked against an independent count (plain json over the file) of level
updates and of sum(price * native size); symbols and BASE amounts as the venue adapters
give them; checksums proven and sequence gaps found."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dataflows.books.capture import parse_book_capture
from dataflows.books.columns import BookColumns
from dataflows.books.parsers import binance_snapshot, book_parser
from dataflows.venues.common import FrameError
from feedhouse.core.errors import InputError
from tests.support.books import independent_book_count
from tests.support.paths import corpus


def _received(name: str):
    for line in corpus(name).read_text().splitlines():
        head, sep, payload = line.partition(": ")
        if sep and head[:1].isdigit() and payload.startswith("{"):
            yield json.loads(payload)


def _independent(name: str) -> tuple[int, float, list[int]]:
    """(level updates, sum(price * native size), Binance gaps) read with json only."""
    return independent_book_count(_received(name))


@pytest.mark.parametrize(("name", "venue", "events", "snapshots", "passed"), [
    ("BINANCE.ws.1.0", "binance", 177, 0, 0),
    ("BINANCE_FUTURES.ws.1.0", "binance_futures", 764, 0, 0),
    ("OKX.ws.1.0", "okx", 290, 3, 290),  # snapshots carry a checksum too
    ("COINBASE.ws.28.0", "coinbase_exchange", 9729, 10, 0),
    ("BITGET.ws.1.0", "bitget", 443, 8, 443),  # OKX's checksum, proven on every frame
    ("BYBIT.ws.25.0", "bybit", 3260, 8, 0),
    ("DERIBIT.ws.1.0", "deribit", 46, 10, 0),  # change_id chains, no checksum
    ("BITMEX.ws.1.0", "bitmex", 1979, 10, 0),  # every update/delete id known: no gap
    ("docs/KRAKEN_BOOK.ws.docs", "kraken", 4, 1, 4),  # Kraken's CRC32 on every v2 frame
])
def test_recorded_sessions_match_an_independent_count(name, venue, events, snapshots, passed):
    found, columns, summary = parse_book_capture(corpus(name))
    levels, notional, gaps = _independent(name)
    assert found == venue
    assert (summary.events, summary.snapshots, summary.invalid) == (events, snapshots, 0)
    assert len(columns) == levels
    assert float(np.dot(columns.price, columns.native_amount)) == pytest.approx(notional, rel=1e-9)
    assert (summary.checksums_passed, summary.checksums_failed) == (passed, 0)
    assert [b.missing for b in summary.breaks] == gaps
    assert all(b.reason == "sequence gap" for b in summary.breaks)


def test_symbols_and_base_amounts_follow_the_venue_adapters():
    _, columns, _ = parse_book_capture(corpus("OKX.ws.1.0"))
    symbols = {f.symbol: (f.instrument_type, f.contract_size, f.inverse) for f in columns.frames}
    assert symbols == {"BTC-USD-INV-220527": ("future", 100.0, True),
                       "UNI-USD-INV-PERP": ("perpetual", 10.0, True), "BTC-USDT": ("spot", 1.0, False)}
    rows = list(columns.json_rows())
    future = next(r for r in rows if r["symbol"] == "BTC-USD-INV-220527" and r["native_amount"] > 0)
    # 100 USD contracts: BASE = contracts * 100 / price, to 8 decimals
    assert future["amount"] == round(future["native_amount"] * 100 / future["price"], 8)
    spot = next(r for r in rows if r["symbol"] == "BTC-USDT")
    assert spot["amount"] == spot["native_amount"]
    _, fut, _ = parse_book_capture(corpus("BINANCE_FUTURES.ws.1.0"))
    assert {f.symbol for f in fut.frames} == {"SUSHI-USDT-PERP", "AKRO-USDT-PERP",
                                               "KEEP-USDT-PERP", "CTK-USDT-PERP"}


def test_first_rows_are_the_recorded_levels():
    _, columns, _ = parse_book_capture(corpus("BINANCE.ws.1.0"))
    first = list(columns.json_rows())[:4]
    assert [(r["side"], r["price"], r["amount"]) for r in first] == [
        ("bid", 0.3513, 6195.0), ("bid", 0.3475, 5548.0), ("bid", 0.3464, 6222.0),
        ("bid", 0.3517, 4265.0)]
    assert first[0] | {} == first[0] and first[0]["exchange_ts"] == "2021-10-12T00:28:32.068000Z"
    assert (first[0]["update_id"], first[0]["prev_update_id"], first[0]["is_snapshot"]) == (
        499869752, 499869749, 0)


def test_arrow_batch_has_the_table_columns():
    _, columns, _ = parse_book_capture(corpus("COINBASE.ws.28.0"))
    table = columns.to_arrow(feed="coinbase")
    assert table.num_rows == len(columns)
    assert table.column("side").to_pylist()[:1] in (["bid"], ["ask"])
    assert set(table.column("venue").to_pylist()) == {"coinbase_exchange"}
    assert sum(table.column("is_snapshot").to_pylist()) == sum(
        len(f.bids) + len(f.asks) for f in columns.frames if f.is_snapshot)


def test_bad_book_frames_are_errors_naming_the_field():
    parse = book_parser("binance")
    with pytest.raises(KeyError):
        parse('{"stream":"x","data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT",'
              '"u":2,"b":[],"a":[]}}', 0)
    with pytest.raises(FrameError, match="bad U"):
        parse('{"data":{"e":"depthUpdate","E":1633998512068,"s":"NKNUSDT","U":"1","u":2,'
              '"b":[],"a":[]}}', 0)
    columns = BookColumns.of(book_parser("okx")(
        '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":'
        '[{"asks":[["x","1","0","1"]],"bids":[],"ts":"1652459225464","checksum":1}]}', 0))
    assert len(columns) == 0 and columns.rejected[0][1] == "could not convert string to float: 'x'"
    with pytest.raises(FrameError, match="no book channel"):
        book_parser("gemini")


def test_binance_rest_snapshot_starts_a_book():
    frame = binance_snapshot("binance", "NKNUSDT", b'{"lastUpdateId":499869760,'
                             b'"bids":[["0.35","10"]],"asks":[["0.36","5"]]}', 1_633_998_512_000_000)
    assert frame.is_snapshot and frame.update_id == 499869760 and frame.symbol == "NKN-USDT"


def test_unknown_venue_and_venue_without_books_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no book channel"):
        parse_book_capture(corpus("GEMINI.ws.1.0"))
    with pytest.raises(InputError, match="unknown venue"):
        parse_book_capture(corpus("OKX.ws.1.0"), "nope")


def test_bybit_top_25_books_stay_25_deep_and_uncrossed():
    """orderBookL2_25 deletes what falls out of the top 25: after every delta applied in
    order, each side holds at most 25 levels and the book is not crossed."""
    from dataflows.books.state import Books

    _, columns, _ = parse_book_capture(corpus("BYBIT.ws.25.0"))
    books = Books()
    for frame in columns.frames:
        books.apply([frame])
        state = books.state(frame.venue, frame.symbol)
        assert state.synced and len(state.bids) <= 25 and len(state.asks) <= 25
        assert not state.crossed(), (frame.symbol, frame.exchange_ts)
    assert len(books.states) == 8
    assert all(len(s.bids) == len(s.asks) == 25 for s in books.states.values())


def test_bybit_v5_orderbook_ids_chain_and_u1_is_a_snapshot():
    """v5 `orderbook.50.<symbol>` (the documented shape): a delta's u follows the last by 1,
    u = 1 restarts the book as a snapshot."""
    from dataflows.books.state import GAP, Books

    parse = book_parser("bybit", "bybit@spot")

    def push(kind: str, u: int, bids, asks) -> str:
        return json.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1672304484978,
                           "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": 7961638724},
                           "cts": 1672304484976})

    frames = [f for text in (push("snapshot", 18521288, [["16493.50", "0.006"]], [["16611.00", "0.029"]]),
                             push("delta", 18521289, [["16493.50", "0"]], []),
                             push("delta", 18521291, [], [["16611.00", "0.5"]]),
                             push("delta", 1, [["16490.00", "1"]], [["16500.00", "2"]]))
              for f in parse(text, 0)]
    assert frames[0].symbol == "BTC-USDT" and frames[0].is_snapshot and frames[3].is_snapshot
    books = Books()
    breaks = books.apply(frames[:3])
    assert [(b.reason, b.missing) for b in breaks] == [(GAP, 1)]
    assert books.apply(frames[3:]) == [] and books.state("bybit", "BTC-USDT").synced


def test_deribit_change_ids_chain_and_a_delete_is_size_zero():
    """Deribit `book.<instrument>.raw`: a change's prev_change_id is the last change_id
    (else a sequence gap with the ids missing); a `delete` level is amount 0."""
    from dataflows.books.state import GAP, Books

    parse = book_parser("deribit")

    def push(kind: str, change: int, prev: int | None, bids, asks) -> str:
        data = {"type": kind, "timestamp": 1626993724318, "instrument_name": "BTC-PERPETUAL",
                "change_id": change, "bids": bids, "asks": asks}
        if prev is not None:
            data["prev_change_id"] = prev
        return json.dumps({"jsonrpc": "2.0", "method": "subscription",
                           "params": {"channel": "book.BTC-PERPETUAL.raw", "data": data}})

    frames = [f for text in (push("snapshot", 100, None, [["new", 32000.5, 1000.0]],
                                  [["new", 32001.0, 500.0]]),
                             push("change", 101, 100, [["delete", 32000.5, 3.0]], []),  # the action removes it
                             push("change", 105, 102, [], [["change", 32001.0, 700.0]]))
              for f in parse(text, 0)]
    assert frames[0].symbol == "BTC-USD-INV-PERP" and frames[0].is_snapshot
    columns = BookColumns.of(frames)
    assert columns.native_amount.tolist() == [1000.0, 500.0, 0.0, 700.0]
    books = Books()
    # Deribit change ids are not consecutive: `missing` is the distance prev - last
    assert [(b.reason, b.missing) for b in books.apply(frames)] == [(GAP, 1)]
    with pytest.raises(FrameError, match="bad level"):
        parse(push("change", 106, 105, [["modify", 1.0, 1.0]], []), 0)


def test_deribit_books_channel_subscribes_the_100ms_book():
    from dataflows.venues import VENUES

    frames = VENUES["deribit"].subscribe(["BTC-USD-INV-PERP"], ["books"])
    assert '"channels":["book.BTC-PERPETUAL.100ms"]' in frames[-1]


def _bitmex(action: str, rows: list) -> str:
    return json.dumps({"table": "orderBookL2", "action": action,
                       "data": [dict(symbol="XBTUSD", **row) for row in rows]})


def test_bitmex_ids_give_prices_and_an_unknown_id_is_a_sequence_gap():
    """BitMEX `orderBookL2`: update and delete rows without a price take their id's price;
    a delete is amount 0; an update of an id never inserted breaks the sequence (the book
    goes unsynced); XBTUSD contracts (1 USD) become BTC at the level's price."""
    from dataflows.books.state import GAP, Books

    parse = book_parser("bitmex")
    assert parse(_bitmex("update", [{"id": 1, "side": "Buy", "size": 5}]), 0) == []  # before the partial
    texts = [_bitmex("partial", [{"id": 1, "side": "Buy", "size": 3200, "price": 32000.0},
                                 {"id": 2, "side": "Sell", "size": 500, "price": 32001.0}]),
             _bitmex("update", [{"id": 1, "side": "Buy", "size": 6400}]),
             _bitmex("delete", [{"id": 2, "side": "Sell"}]),
             _bitmex("insert", [{"id": 3, "side": "Sell", "size": 100, "price": 32002.0}]),
             _bitmex("update", [{"id": 2, "side": "Sell", "size": 7},  # deleted: unknown now
                                {"id": 3, "side": "Sell", "size": 300}])]
    frames = [f for text in texts for f in parse(text, 1_626_993_370_000_000)]
    assert frames[0].symbol == "BTC-USD-INV-PERP" and frames[0].is_snapshot
    columns = BookColumns.of(frames)
    assert columns.price.tolist() == [32000.0, 32001.0, 32000.0, 32001.0, 32002.0, 32002.0]
    assert columns.native_amount.tolist() == [3200, 500, 6400, 0, 100, 300]
    assert columns.amount[0] == pytest.approx(0.1)  # 3,200 USD at 32,000
    books = Books()
    breaks = books.apply(frames)
    assert [(b.reason, b.symbol, b.missing) for b in breaks] == [(GAP, "BTC-USD-INV-PERP", 1)]
    assert not books.state("bitmex", "BTC-USD-INV-PERP").synced
    # a delete of an unknown id breaks the sequence too, even with a price (the newer API's rows)
    again = parse(_bitmex("delete", [{"id": 8, "side": "Buy", "price": 31000.0}]), 0)
    assert (again[0].update_id, again[0].prev_update_id, again[0].bids) == (8, 7, [[31000.0, 0]])
    with pytest.raises(FrameError, match="bad side"):
        parse(_bitmex("insert", [{"id": 4, "side": "Both", "size": 1, "price": 1.0}]), 0)


def test_a_bitmex_frame_repeated_at_once_gives_the_same_events_so_dedup_drops_it_no_gap():
    """A duplicate delivery of an update or delete frame (the same bytes right after it)
    gives the events it gave the first time: the same numbers and dedup keys, no unknown
    id, no sequence gap; the frames after it follow on. The same bytes later, after other
    frames, are a new event (a level back to an earlier size)."""
    from dataflows.books.live import frame_keys
    from dataflows.books.state import Books

    parse = book_parser("bitmex")
    update = _bitmex("update", [{"id": 1, "side": "Buy", "size": 6400}])
    delete = _bitmex("delete", [{"id": 2, "side": "Sell"}])
    texts = [_bitmex("partial", [{"id": 1, "side": "Buy", "size": 3200, "price": 32000.0},
                                 {"id": 2, "side": "Sell", "size": 500, "price": 32001.0}]),
             update, update, delete, delete,
             _bitmex("insert", [{"id": 3, "side": "Sell", "size": 100, "price": 32002.0}]),
             update]
    frames = [f for text in texts for f in parse(text, 1_626_993_370_000_000)]
    assert [(f.update_id, f.prev_update_id) for f in frames] == [
        (1, 0), (2, 1), (2, 1), (3, 2), (3, 2), (4, 3), (5, 4)]
    keys = frame_keys(BookColumns.of(frames)).tolist()
    assert keys[2] == keys[1] and keys[4] == keys[3] and len(set(keys)) == 5
    books = Books()
    assert books.apply(frames) == []
    state = books.state("bitmex", "BTC-USD-INV-PERP")
    assert state.synced and state.last_id == 5 and state.stale == 2
    # a partial delivered twice is one snapshot; after it the same update is a new event
    again = [f for text in (texts[0], texts[0], update)
             for f in parse(text, 1_626_993_371_000_000)]
    assert [(f.update_id, f.prev_update_id) for f in again] == [(6, 0), (6, 0), (7, 6)]


def test_bitmex_quanto_levels_need_the_xbt_price_the_connection_saw():
    """A quanto's contracts are BASE at multiplier x XBT price (as its quotes are): before
    any XBT price the frame is invalid; after an XBTUSD quote, sized."""
    parse = book_parser("bitmex")
    partial = json.dumps({"table": "orderBookL2", "action": "partial", "data": [
        {"symbol": "UNIUSDT", "id": 9, "side": "Buy", "size": 750, "price": 17.277}]})
    with pytest.raises(FrameError, match="no contract size for UNIUSDT"):
        parse(partial, 1_626_993_370_000_000)
    quote = json.dumps({"table": "quote", "action": "insert", "data": [
        {"timestamp": "2021-07-22T22:36:09.000Z", "symbol": "XBTUSD", "bidSize": 1,
         "bidPrice": 32174.5, "askPrice": 32175.5, "askSize": 1}]})
    assert parse(quote, 1_626_993_370_000_000) == []
    columns = BookColumns.of(parse(partial, 1_626_993_370_000_000))
    assert columns.amount.tolist() == [pytest.approx(750 * 0.00001 * 32175)]


def test_bitmex_books_channel_subscribes_order_book_l2():
    from dataflows.venues import VENUES

    frames = VENUES["bitmex"].subscribe(["BTC-USD-INV-PERP"], ["books"])
    assert '"orderBookL2:XBTUSD"' in frames[0] and len(frames) == 1
    # a quanto's book needs the XBT price: the .BXBT index is subscribed before it
    assert VENUES["bitmex"].subscribe(["ETH-USD-PERP"], ["books"]) == [
        '{"op":"subscribe","args":["instrument:.BXBT"]}',
        '{"op":"subscribe","args":["orderBookL2:ETHUSD"]}']
