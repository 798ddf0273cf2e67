"""Golden tests for the venue adapters gemini, gateio, bitmex, deribit, huobi (HTX), bitget.

Every capture of these venues (real recordings and the documentation-built ones under
docs/) is parsed and compared exactly with tests/golden/<capture>.{trades,quotes}.jsonl
(regenerate with tests/golden/regenerate.py, then check the diff by hand); the counts per
capture are pinned here; a few records are checked field by field against the raw frames.
"""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import orjson
import pytest

from dataflows.sources.capture import (
    capture_url,
    parse_capture,
    quote_json,
    read_capture,
    trade_json,
)
from dataflows.venues import get_venue, venue_for_url
from feedhouse.core.records import Trade, validate_quotes, validate_trades
from tests.support.paths import FEEDHOUSE, ROOT, VENUE_DOCS, corpus

GOLDEN = ROOT / "tests" / "golden"
DOCS = VENUE_DOCS

# capture -> (venue, frames, trades, quotes, ignored, invalid)
EXPECTED = {
    "GEMINI.ws.1.0": ("gemini", 678, 516, 0, 652, 0),
    "GATEIO.ws.1.0": ("gateio", 239, 9, 0, 230, 0),
    "BITMEX.ws.1.0": ("bitmex", 2120, 27, 436, 2010, 0),
    "DERIBIT.ws.1.0": ("deribit", 136, 0, 0, 136, 0),
    "HUOBI.ws.44.0": ("huobi", 362, 73, 0, 318, 0),
    "BITGET.ws.1.0": ("bitget", 684, 430, 0, 646, 0),
    "docs/DERIBIT_TRADES.ws.docs": ("deribit", 9, 4, 1, 5, 0),
    "docs/GATEIO_QUOTES.ws.docs": ("gateio", 6, 1, 2, 3, 0),
    "docs/HUOBI_TRADES.ws.docs": ("huobi", 6, 3, 1, 3, 0),
    "docs/BITGET_V2.ws.docs": ("bitget", 9, 5, 1, 4, 0),
    "docs/BITMEX_TRADES.ws.docs": ("bitmex", 3, 1, 0, 2, 0),
    "docs/GEMINI_WS.ws.docs": ("gemini", 3, 1, 1, 1, 0),
}


def _golden(name: str, kind: str) -> list[dict]:
    path = GOLDEN / f"{Path(name).name}.{kind}.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


@pytest.fixture(scope="module")
def parsed():
    return {name: parse_capture(corpus(name)) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_matches_golden(parsed, name):
    venue, result, summary = parsed[name]
    expected = EXPECTED[name]
    assert (venue.name, summary.frames, summary.trades, summary.quotes, summary.ignored,
            summary.invalid) == expected
    assert [trade_json(t) for t in result.trades] == _golden(name, "trades")
    assert [quote_json(q) for q in result.quotes] == _golden(name, "quotes")
    # the records honour the market.trades / market.quotes contract
    validate_trades(result.trades)
    validate_quotes(result.quotes)


def test_docs_fixtures_say_where_they_come_from():
    for name in EXPECTED:
        if name.startswith("docs/"):
            first = (corpus(name)).read_text().splitlines()[0]
            assert first.startswith("# written from ") and "API documentation" in first


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_venue_inferred_from_connect_url(name):
    assert venue_for_url(capture_url(corpus(name))).name == EXPECTED[name][0]


def _find(result, trade_id: str) -> Trade:
    return next(t for t in result.trades if t.trade_id == trade_id)


def test_hand_checked_records(parsed):
    # Gemini: the first l2_updates frame's `trades` list, and a standalone trade event
    gem = parsed["GEMINI.ws.1.0"][1]
    assert _find(gem, "45465785975") == Trade(
        "gemini", "ALCX-USD", "ALCXUSD", "45465785975", 302.53, 0.992143, "buy",
        1624493651491000, 1624493666638480, "spot", 0.992143, 1.0)
    assert _find(gem, "45465818387")[3:7] == ("45465818387", 0.07946, 1020.482111, "buy")
    # BitMEX: partial snapshot entry; ISO time to µs; XBT-quoted alt future
    bmx = parsed["BITMEX.ws.1.0"][1]
    first = bmx.trades[0]
    assert first == Trade(  # September 2021's last Friday; homeNotional = 15 XRP
        "bitmex", "XRP-BTC-210924", "XRPU21", "8f8fe9db-eb13-26a5-dea2-a398d89e04a8",
        0.00001819, 15.0, "sell", 1626992655328000, 1626993370145779, "future", 15.0, 1.0)
    uni = _find(bmx, "39744121-c20e-44ba-8cc8-a6b8cdf72885")  # 52 contracts: homeNotional
    assert uni[1:8] == (
        "UNI-USDT-PERP", "UNIUSDT", "39744121-c20e-44ba-8cc8-a6b8cdf72885", 17.297,
        16.73101673101673, "buy", 1626993370014000)
    assert uni[9:] == ("perpetual", 52.0, round(16.73101673101673 / 52, 12))
    # BitMEX (docs): XBTUSD 200 inverse contracts = homeNotional 0.00814184 BTC
    (xbt,) = parsed["docs/BITMEX_TRADES.ws.docs"][1].trades
    assert (xbt.symbol, xbt.amount, xbt.native_amount, xbt.contract_size, xbt.side) == (
        "BTC-USD-PERP", 0.00814184, 200.0, 1.0, "sell")
    # Gate.io: create_time_ms keeps its sub-millisecond fraction
    gate = parsed["GATEIO.ws.1.0"][1]
    assert gate.trades[0] == Trade(
        "gateio", "DIS-USDT", "DIS_USDT", "816995772", 121.58, 0.201, "sell",
        1619093543708264, 1619093543755753, "spot", 0.201, 1.0)
    # HTX: gzip frame, tradeId (not the deprecated huge `id`)
    htx = parsed["HUOBI.ws.44.0"][1]
    assert htx.trades[0] == Trade(
        "huobi", "TRIO-ETH", "trioeth", "100045088885", 9.2e-07, 20995.88, "buy",
        1618678027940000, 1618678070909737, "spot", 20995.88, 1.0)
    # Bitget v1: array entries without an id -> stable hash of the fields as sent
    bg = parsed["BITGET.ws.1.0"][1]
    cult = bg.trades[0]
    assert cult[:3] == ("bitget", "CULT-USDT", "CULTUSDT")
    assert cult[4:8] == (3.507e-05, 271967.0, "sell", 1649290076333000)
    again = get_venue("bitget").parse(
        '{"action":"update","arg":{"instType":"sp","channel":"trade","instId":"CULTUSDT"},'
        '"data":[["1649290076333","0.00003507","271967","sell"]]}', 1)
    assert again.trades[0].trade_id == cult.trade_id  # a resent trade gets the same id
    # Deribit (docs): perpetual and option symbols; USD amounts of the inverse perpetual
    # in BTC at the trade's price (10 USD at 8,950 = 0.00111732 BTC), option amounts in BTC
    der = parsed["docs/DERIBIT_TRADES.ws.docs"][1]
    assert [(t.symbol, t.trade_id, t.amount, t.native_amount, t.instrument_type, t.side)
            for t in der.trades] == [
        ("BTC-USD-PERP", "48079254", 0.00111732, 10.0, "perpetual", "sell"),
        ("BTC-USD-PERP", "48079255", 0.0279314, 250.0, "perpetual", "buy"),
        ("BTC-USD-PERP", "48079256", 0.00446877, 40.0, "perpetual", "buy"),
        ("BTC-USD-200527-9000-C", "48079573", 0.1, 0.1, "option", "sell"),
    ]
    # Gemini's WebSocket API (docs): m = buyer is maker -> the taker sold; E in ns
    (gws,) = parsed["docs/GEMINI_WS.ws.docs"][1].trades
    assert gws == Trade("gemini", "BTC-USD", "btcusd", "2840140956529623", 120649.97,
                        0.00461909, "sell", 1759873803503023, 1759873803600000,
                        "spot", 0.00461909, 1.0)
    (gq,) = parsed["docs/GEMINI_WS.ws.docs"][1].quotes
    assert gq[3:] == (45000.5, 1.25, 45001.0, 0.75, 1751508438600117, 1751508438700000,
                      "spot", 1751505576085)
    # Bitget v2 (docs): futures instType -> -PERP; snapshot repeats keep their tradeId
    v2 = parsed["docs/BITGET_V2.ws.docs"][1]
    assert [t.trade_id for t in v2.trades].count("1000000001") == 2
    assert _find(v2, "1111111111111111111").symbol == "ETH-USDT-PERP"


def test_gemini_symbols_use_gemini_quotes(parsed):
    symbols = {t.symbol for t in parsed["GEMINI.ws.1.0"][1].trades}
    assert all("-" in s for s in symbols)
    assert get_venue("gemini").normalize_symbol("ZECLTC") == "ZEC-LTC"


@pytest.mark.parametrize(("venue", "normalized", "native"), [
    ("gemini", "BTC-USD", "BTCUSD"),
    ("gemini", "GRT-USD", "GRTUSD"),
    ("gateio", "BTC-USDT", "BTC_USDT"),
    ("bitmex", "BTC-USD-PERP", "XBTUSD"),
    ("bitmex", "ETH-USDT-PERP", "ETHUSDT"),
    ("bitmex", "BTC-USD-210924", "XBTU21"),
    ("bitmex", "XRP-BTC-210924", "XRPU21"),
    ("bitmex", "BTC-USDT", "XBT_USDT"),
    ("deribit", "BTC-USD-PERP", "BTC-PERPETUAL"),
    ("deribit", "ETH-USDC-PERP", "ETH_USDC-PERPETUAL"),
    ("deribit", "BTC-USD-210924-8000-P", "BTC-24SEP21-8000-P"),
    ("deribit", "BTC-USD-200605", "BTC-5JUN20"),
    ("gemini", "BTC-GUSD-PERP", "BTCGUSDPERP"),
    ("deribit", "BTC-USDC", "BTC_USDC"),
    ("huobi", "BTC-USDT", "btcusdt"),
    ("huobi", "YFI-HUSD", "yfihusd"),
    ("bitget", "BTC-USDT", "BTCUSDT"),
])
def test_symbol_mapping_round_trips(venue, normalized, native):
    v = get_venue(venue)
    assert v.native_symbol(normalized) == native
    assert v.normalize_symbol(native) == normalized


def test_bitget_v1_product_ids():
    v = get_venue("bitget")
    assert v.normalize_symbol("BTCUSDT_SPBL") == "BTC-USDT"
    assert v.normalize_symbol("BTCUSDT_UMCBL") == "BTC-USDT-PERP"


def test_subscribe_frames():
    loads = orjson.loads
    assert [loads(f) for f in get_venue("gemini").subscribe(["BTC-USD", "ETH-USD"], ["trades"])] \
        == [{"id": "1", "method": "subscribe", "params": ["btcusd@trade", "ethusd@trade"]}]
    assert [loads(f) for f in get_venue("gemini@v2").subscribe(["BTC-USD", "ETH-USD"], ["trades"])] \
        == [{"type": "subscribe", "subscriptions": [{"name": "l2",
                                                      "symbols": ["BTCUSD", "ETHUSD"]}]}]
    gate = [loads(f) for f in get_venue("gateio").subscribe(["BTC-USDT"], ["trades", "quotes"])]
    assert [(g["channel"], g["event"], g["payload"]) for g in gate] == [
        ("spot.trades", "subscribe", ["BTC_USDT"]), ("spot.book_ticker", "subscribe", ["BTC_USDT"])]
    assert loads(get_venue("bitmex").subscribe(["BTC-USD-PERP"], ["trades", "quotes"])[0]) == {
        "op": "subscribe", "args": ["trade:XBTUSD", "quote:XBTUSD"]}
    heartbeat, sub = (loads(f) for f in get_venue("deribit").subscribe(
        ["BTC-USD-PERP"], ["trades", "quotes"]))
    assert heartbeat["method"] == "public/set_heartbeat"
    assert sub["params"]["channels"] == ["trades.BTC-PERPETUAL.100ms", "quote.BTC-PERPETUAL"]
    assert [loads(f)["sub"] for f in get_venue("huobi").subscribe(["BTC-USDT"], ["trades"])] == [
        "market.btcusdt.trade.detail"]
    assert loads(get_venue("bitget").subscribe(["BTC-USDT", "ETH-USDT-PERP"], ["trades"])[0]) == {
        "op": "subscribe", "args": [
            {"instType": "SPOT", "channel": "trade", "instId": "BTCUSDT"},
            {"instType": "USDT-FUTURES", "channel": "trade", "instId": "ETHUSDT"}]}
    assert loads(get_venue("bitmex").unsubscribe(["BTC-USD-PERP"], ["trades"])[0])["op"] \
        == "unsubscribe"


def test_pings_are_answered():
    htx = get_venue("huobi")
    events = list(read_capture(corpus("HUOBI.ws.44.0")))
    pongs = [htx.answer_ping(e.data) for e in events if e.kind == "received"]
    recorded = [orjson.loads(e.data) for e in events if e.kind == "sent" and "pong" in e.data]
    assert len(recorded) == 6  # the recording's client answered six pings: so do we
    assert [orjson.loads(p) for p in pongs if p] == recorded
    ping = gzip.compress(b'{"ping":1618678073643}')
    assert orjson.loads(htx.answer_ping(ping)) == {"pong": 1618678073643}
    assert htx.answer_ping(gzip.compress(b'{"ch":"market.btcusdt.bbo"}')) is None
    assert htx.answer_ping(b"\x1f\x8b broken") is None
    assert htx.parse(ping, 1).ignored == 1
    deribit = get_venue("deribit").answer_ping(
        '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')
    assert orjson.loads(deribit)["method"] == "public/test"
    gate = get_venue("gateio").answer_ping('{"time":1606293280,"channel":"spot.ping"}')
    assert orjson.loads(gate) == {"time": 1606293280, "channel": "spot.pong"}
    assert (get_venue("bitmex").ping_frame, get_venue("bitget").ping_frame) == ("ping", "ping")
    assert get_venue("bitmex").parse("pong", 1).ignored == 1


@pytest.mark.integration
def test_cli_reproduces_golden_for_gzip_capture():
    out = subprocess.run(
        [FEEDHOUSE, "capture", "parse", str(corpus("HUOBI.ws.44.0"))],
        capture_output=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    rows = [orjson.loads(line) for line in out.stdout.splitlines() if line]
    assert rows == _golden("HUOBI.ws.44.0", "trades")


def test_deribit_trade_sequence_for_gap_checks():
    frames = [e.data for e in read_capture(corpus("docs/DERIBIT_TRADES.ws.docs"))
              if e.kind == "received"]
    seen = [pair for frame in frames for pair in get_venue("deribit").sequence_of(frame)]
    assert seen == [("BTC-PERPETUAL", 30289432), ("BTC-PERPETUAL", 30289433),
                    ("BTC-PERPETUAL", 30289434), ("BTC-27MAY20-9000-C", 1966)]
    assert get_venue("deribit").sequence_of('{"trade_seq": broken') == []
