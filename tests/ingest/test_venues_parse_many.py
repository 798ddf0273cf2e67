"""Batch parse (Venue.parse_many): the msgspec fast path of Binance, OKX and Coinbase
gives exactly what looping the per-frame parse gives - on every frame of their captures
and on mutated trade frames (wrong types, big integers, missing or duplicated keys).
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xxhash import xxh3_64_intdigest

from dataflows.parse.trade_columns import TradeColumns
from dataflows.sources.capture import read_capture
from dataflows.venues import binance, bitstamp, coinbase, gateio, get_venue, okx
from dataflows.venues.base import BatchResult, looping
from feedhouse.core.records import us_from_s
from tests.support.fuzz import JSON, dumps, mutate
from tests.support.paths import corpus


def _binance(name: str):
    """Binance's fast path for one of its venues (that venue's contract sizes)."""
    return binance._decode, binance._build(name, get_venue(name).catalog)


CASES = {
    "binance": ("BINANCE.ws.1.0", _binance("binance")),
    "binance_futures": ("BINANCE_FUTURES.ws.1.0", _binance("binance_futures")),
    "binance_delivery": ("docs/BINANCE_DELIVERY.ws.docs", _binance("binance_delivery")),
    "okx": ("OKX.ws.1.0", (okx._decode, okx._build)),
    "coinbase_exchange": ("COINBASE.ws.28.0", (coinbase._decode, coinbase._build)),
    # a coinbase feed on ws-feed frames
    "coinbase": ("COINBASE.ws.28.0", (coinbase._decode, coinbase._build)),
    "bitstamp": ("BITSTAMP.ws.1.0", (bitstamp._decode, bitstamp._build)),
    "gateio": ("GATEIO.ws.1.0", (gateio._decode, gateio._build)),
}


def _messages(capture: str) -> list[tuple[int, str | bytes]]:
    return [
        (us_from_s(e.ts), e.data) for e in read_capture(corpus(capture)) if e.kind == "received"
    ]


def _same(venue_name: str, messages) -> BatchResult:
    venue = get_venue(venue_name)
    got = venue.parse_many(messages)
    want = looping(venue.parse)(messages)
    assert got.counts == want.counts
    assert got.trades == want.trades
    assert got.quotes == want.quotes
    assert got.invalid == want.invalid
    return got


@pytest.mark.parametrize("venue_name", sorted(CASES))
def test_parse_many_equals_looping_parse_on_the_capture(venue_name: str) -> None:
    capture, fast = CASES[venue_name]
    messages = _messages(capture)
    whole = _same(venue_name, messages)
    assert len(whole.counts) == len(messages) and whole.trades
    for size in (1, 7, 64):  # any split into micro-batches gives the same records
        parts = [_same(venue_name, messages[i : i + size]) for i in range(0, len(messages), size)]
        assert [t for p in parts for t in p.trades] == whole.trades
    # the fast path itself takes every trade frame (else this test compared nothing)
    venue = get_venue(venue_name)
    decode, build = fast
    for ts, frame in messages:
        want = venue.parse(frame, ts).trades
        if want:
            columns, counts = build([decode(frame)], [ts])
            assert counts == [len(want)] and columns == want, frame[:200]
    assert isinstance(whole.trades, TradeColumns)  # columns from parse on, never rows


def test_parse_many_default_is_the_per_frame_loop() -> None:
    kraken = get_venue("kraken")  # no fast path: the default batch parse
    messages = _messages("KRAKEN.ws.48.0")
    got = kraken.parse_many(messages)
    assert got.counts.count(-1) == 0 and len(got.counts) == len(messages)
    assert got.trades == [t for ts, f in messages for t in kraken.parse(f, ts).trades]


def test_outcome_codes_of_a_mixed_batch() -> None:
    venue = get_venue("binance")
    trade = (
        '{"stream":"a@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":7,'
        '"p":"1.5","q":"2","T":1626992761966,"m":true}}'
    )
    ack = '{"result":null,"id":1}'
    bad = trade.replace('"a":7', '"a":1.5')
    got = venue.parse_many([(10, trade), (11, ack), (12, bad), (13, trade.encode())])
    assert got.counts == [1, 0, -1, 1]
    assert [t.trade_id for t in got.trades] == ["7", "7"]
    assert [i for i, _ in got.invalid] == [2] and "not an integer" in got.invalid[0][1].reason


# -- mutated trade frames -------------------------------------------------------------------

BIG = st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 0, -1, 1.0, 1e300])


def _trade_frames(venue_name: str) -> list[str]:
    capture, _ = CASES[venue_name]
    venue = get_venue(venue_name)
    return [f for ts, f in _messages(capture) if venue.parse(f, ts).trades]


def _mutate_fields(data, frame: str) -> str:
    """Change one field of the trade object itself (types the fast decoder must refuse)."""
    root = {"x": orjson.loads(frame)}
    parent, slot = (root["x"], "data") if "data" in root["x"] else (root, "x")
    if isinstance(parent[slot], list):
        parent, slot = parent[slot], data.draw(st.integers(0, len(parent[slot]) - 1))
    target = parent[slot]
    key = data.draw(st.sampled_from(sorted(target)))
    op = data.draw(st.sampled_from(["value", "big", "delete", "dup"]))
    if op == "delete":
        del target[key]
    elif op == "dup":  # a repeated key: orjson keeps the last one, so must the fast path
        inner = dumps(target)[:-1] + "," + dumps({key: data.draw(JSON | BIG)})[1:]
        parent[slot] = "@INNER@"
        return dumps(root["x"]).replace('"@INNER@"', inner)
    else:
        target[key] = data.draw(BIG if op == "big" else JSON)
    return dumps(root["x"])


@pytest.mark.parametrize("venue_name", ["binance_futures", "okx", "coinbase", "bitstamp", "gateio"])
def test_parse_many_equals_looping_parse_on_mutated_frames(venue_name: str) -> None:
    frames = _trade_frames(venue_name)
    assert frames

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def run(data) -> None:
        frame = data.draw(st.sampled_from(frames))
        if data.draw(st.booleans()):
            mutated = _mutate_fields(data, frame)
        else:
            mutated = mutate(data, frame)
        _same(venue_name, [(1_700_000_000_000_000, frame), (1_700_000_000_000_001, mutated)])

    run()


@pytest.mark.parametrize("venue_name", ["binance_futures", "coinbase"])
def test_parse_batch_through_parse_many_matches_the_per_frame_path(venue_name: str) -> None:
    from dataflows.frames import MessageBatch
    from dataflows.parse.stage import parse_batch

    venue = get_venue(venue_name)
    messages = _messages(CASES[venue_name][0])
    bad = messages[-1][1][:-3]  # a broken frame: a dead letter on both paths
    messages = [*messages, (messages[-1][0] + 61_000_000, bad)]  # ... in the next minute
    batch = MessageBatch(venue_name, venue_name, "p", 0, messages, [])
    fast = parse_batch(batch)

    def per_frame(frame, ts):  # not the registered parse: parse_batch loops over frames
        return venue.parse(frame, ts)

    slow = parse_batch(batch, per_frame)
    assert fast.trades == slow.trades and fast.quotes == slow.quotes
    assert fast.dead == slow.dead and len(fast.dead) == 1
    assert dict(fast.ledger.cells) == dict(slow.ledger.cells)


# -- lax typed decoding (dataflows/venues/typed.py) --------------------------------------------

_BINANCE = ('{"stream":"a@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":7,'
            '"p":"1.5","q":"2","T":1626992761966,"m":true}}')
_OKX = ('{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",'
        '"tradeId":"7849","px":"30218.8","sz":"1","side":"buy","ts":"1652459199958"}]}')
_COINBASE = ('{"type":"match","trade_id":881613,"maker_order_id":"m","taker_order_id":"t",'
             '"side":"sell","size":"0.04","price":"14.7775","product_id":"BAND-GBP",'
             '"sequence":333938798,"time":"2021-04-17T16:43:30.244075Z"}')
# (venue, frame, field text, replacement, taken): a lax decoder coerces "7" to 7 or "true"
# to True; the fast path must refuse what `parse` refuses and take what it takes.
LAX = [
    ("binance", _BINANCE, '"a":7', '"a":"7"', False),
    ("binance", _BINANCE, '"a":7', '"a":7.0', False),
    ("binance", _BINANCE, '"T":1626992761966', '"T":"1626992761966"', False),
    ("binance", _BINANCE, '"m":true', '"m":"true"', False),
    ("binance", _BINANCE, '"m":true', '"m":1', False),
    ("binance", _BINANCE, '"p":"1.5"', '"p":"nan"', False),
    ("binance", _BINANCE, '"p":"1.5"', '"p":"-0"', False),
    ("binance", _BINANCE, '"p":"1.5"', '"p":" 1.5"', True),  # float() takes it; parse does
    ("binance", _BINANCE, '"p":"1.5"', '"p":1.5', True),  # a JSON number: both take it
    ("binance", _BINANCE, '"E":1', '"E":"x","extra":[1,{"b":null}]', True),  # not read
    ("okx", _OKX, '"ts":"1652459199958"', '"ts":1652459199958', False),
    ("okx", _OKX, '"ts":"1652459199958"', '"ts":"0"', False),
    ("okx", _OKX, '"sz":"1"', '"sz":"1e400"', False),
    ("okx", _OKX, '"side":"buy"', '"side":"BUY"', False),
    ("coinbase", _COINBASE, '"trade_id":881613', '"trade_id":"881613"', False),
    ("coinbase", _COINBASE, '"size":"0.04"', '"size":"inf"', False),
    ("coinbase", _COINBASE, '.244075Z', '.2440759Z', True),  # cut to µs on both paths
    ("coinbase", _COINBASE, '"sequence":333938798', '"sequence":"x"', True),  # not read
    # times past MAX_TS_US (year 2286) do not fit the int64 columns: invalid on both paths
    ("binance", _BINANCE, '"T":1626992761966', '"T":9223372036854775', False),
    ("coinbase", _COINBASE, '2021-04-17T16:43:30', '9999-04-17T16:43:30', False),
]


@pytest.mark.parametrize(("venue_name", "frame", "old", "new", "taken"), LAX)
def test_lax_decoding_takes_exactly_what_parse_takes(venue_name, frame, old, new, taken) -> None:
    assert old in frame
    changed = frame.replace(old, new, 1)
    for sent in (changed, changed.encode()):
        got = _same(venue_name, [(1_700_000_000_000_000, frame), (1_700_000_000_000_001, sent)])
        assert got.counts[1] == (1 if taken else -1), got.invalid


def test_binary_frames_with_bad_utf8_in_a_field_not_decoded_stay_invalid() -> None:
    """A typed decoder skips the fields it does not declare without checking their UTF-8:
    a binary frame that is not ASCII goes through `parse` (orjson checks it)."""
    bad = _BINANCE.encode().replace(b'"E":1', b'"E":"\x80"')
    accented = _BINANCE.replace('"E":1', '"E":"\u00e9"').encode()
    got = _same("binance", [(1, bad), (2, accented), (3, _BINANCE.encode())])
    assert got.counts == [-1, 1, 1] and "not JSON" in got.invalid[0][1].reason


def test_trades_keep_frame_order_across_fast_and_per_frame_frames() -> None:
    """Frames the fast path leaves to `parse` (a binary non-ASCII frame) and frames it
    takes interleave; the trades come out in frame order, as looping `parse` gives them."""
    def frame(ident: int) -> str:
        return _BINANCE.replace('"a":7', f'"a":{ident}')

    slow = [frame(i).replace('"E":1', '"E":"\u00e9"').encode() for i in (2, 4)]
    got = _same("binance", [(1, frame(1)), (2, slow[0]), (3, frame(3)), (4, slow[1]),
                            (5, frame(5))])
    assert [t.trade_id for t in got.trades] == ["1", "2", "3", "4", "5"]
    assert got.counts == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("venue_name", ["binance_delivery", "okx", "coinbase"])
def test_trade_columns_give_the_rows_arrow_table_and_dedup_keys(venue_name: str) -> None:
    """What dedup and the sink make of the columns is what they made of `Trade` rows:
    the same xxh3 keys (recovery snapshots stay valid) and the same insert table."""
    from dataflows.dedup.window import trade_keys
    from dataflows.sink.batches import TRADES, rows_table, schema_of

    columns = get_venue(venue_name).parse_many(_messages(CASES[venue_name][0])).trades
    rows = list(columns)
    assert isinstance(columns, TradeColumns) and rows
    assert trade_keys(columns).tolist() == [
        xxh3_64_intdigest(f"{t.venue}\x1f{t.symbol}\x1f{t.trade_id}".encode()) for t in rows]
    assert columns.to_arrow(schema_of(TRADES), "f").equals(rows_table(TRADES, rows, {"feed": "f"}))
    keep = np.arange(len(rows)) % 3 == 0
    assert columns.take(keep) == [t for t, k in zip(rows, keep, strict=True) if k]
    assert TradeColumns.concat([columns, rows[:2]]) == rows + rows[:2]


def test_a_trade_time_beyond_the_int64_columns_is_invalid_not_a_crash() -> None:
    frame = _trade_frames("bitstamp")[0]
    far = frame.replace('"microtimestamp":"1641343699596000"',
                        '"microtimestamp":"99999999999999999999999"')
    assert far != frame
    got = _same("bitstamp", [(1, frame), (2, far)])
    assert got.counts == [1, -1] and "bad trade id/time" in got.invalid[0][1].reason


def test_trade_columns_convert_sizes_as_instruments_trade_does() -> None:
    """Contract sizes in BASE, column-wise, equal `instruments.trade` row by row: spot,
    inverse (USD contracts), linear contracts, and unknown sizes (0: kept as given)."""
    from dataflows.parse.trade_columns import Symbols, trade_columns
    from dataflows.venues import instruments as ins

    specs = {"S": ins.spec_of("BTC-USDT"), "I": ins.spec_of("BTC-USD-PERP", 100.0, True),
             "L": ins.spec_of("ETH-USDT-PERP", 0.01), "U": ins.spec_of("X-Y-PERP", 0.0, True),
             "Z": ins.spec_of("X-Z-PERP", 0.0)}
    natives = ["S", "I", "L", "U", "Z", "I", "I"]
    price = np.array([30218.8, 8950.0, 1876.31, 5.0, 7.0, 3.0, 123456.7])
    size = np.array([0.3528, 1.0, 3.0, 2.0, 4.0, 7.0, 1e-3])
    ts = np.arange(len(natives), dtype=np.int64) + 1_700_000_000_000_000
    got = trade_columns("v", natives, Symbols.of(natives, specs.__getitem__),
                        [str(i) for i in range(7)], price, size,
                        ["buy"] * 7, ts, ts + 5)
    want = [ins.trade("v", specs[x], x, str(i), p, q, "buy", t, t + 5)
            for i, (x, p, q, t) in enumerate(zip(natives, price.tolist(), size.tolist(),
                                                 ts.tolist(), strict=True))]
    assert got == want
