"""Venue records checked by hand: sides, trade ids, timestamps and shapes field by field
against the raw frames, heartbeats and acks ignored (not invalid), malformed frames
invalid with a reason, pings answered, and the sequence fields gap checks read.
"""

from __future__ import annotations

import gzip

import orjson
import pytest

from dataflows.sources.capture import read_capture
from dataflows.venues import get_venue
from feedhouse.core.records import Trade
from tests.support.paths import corpus
from tests.support.venues import parse_frame, parsed_capture


def _result(name: str):
    return parsed_capture(name)[1]


def _find(result, trade_id: str) -> Trade:
    return next(t for t in result.trades if t.trade_id == trade_id)


# --- sides and ids ---------------------------------------------------------------------------


def test_binance_buyer_maker_means_taker_sold() -> None:
    frame = (
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":7,'
        '"p":"100.5","q":"0.25","f":1,"l":2,"T":1633998523963,"m":true,"M":true}}'
    )
    (trade,) = parse_frame("binance_us", frame).trades
    assert (trade.venue, trade.symbol, trade.trade_id, trade.side) == (
        "binance_us", "BTC-USDT", "7", "sell",
    )
    assert (trade.price, trade.amount, trade.exchange_ts) == (100.5, 0.25, 1633998523963000)


def test_coinbase_side_is_the_takers() -> None:
    frame = (
        '{"type":"match","trade_id":5,"side":"buy","size":"1","price":"2","product_id":"BTC-USD",'
        '"sequence":9,"time":"2021-04-17T16:43:37.089723Z"}'
    )
    (trade,) = parse_frame("coinbase", frame).trades
    assert trade.side == "sell"  # the maker bought
    assert trade.exchange_ts == 1618677817089723


def test_kraken_v1_trade_id_is_stable_and_distinct() -> None:
    one = '[993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]'
    other = one.replace('"s","l"', '"b","l"')
    first = parse_frame("kraken", one).trades[0]
    again = parse_frame("kraken", one, 1_800_000_000_000_000).trades[0]
    assert first.trade_id == again.trade_id  # a resent trade keeps its id
    assert parse_frame("kraken", other).trades[0].trade_id != first.trade_id
    assert first.exchange_ts == 1618678142557535  # exact, no float rounding
    xbt = '[1,[["50000.1","0.1","1618678142.5","b","m",""]],"trade","XBT/USD"]'
    assert parse_frame("kraken", xbt).trades[0].symbol == "BTC-USD"


def test_bitfinex_te_and_tu_share_the_exchange_id() -> None:
    trades = _result("docs/BITFINEX_TRADES.ws.docs").trades
    updates = [t for t in trades if t.trade_id in ("401597395", "401597396")]
    assert len(updates) == 4
    assert len({(t.trade_id, t.price, t.amount, t.side, t.exchange_ts) for t in updates}) == 2
    assert {t.side for t in updates} == {"buy", "sell"}  # AMOUNT < 0: the taker sold


def test_hand_checked_records() -> None:
    # Gemini: the first l2_updates frame's `trades` list, and a standalone trade event
    gem = _result("GEMINI.ws.1.0")
    assert _find(gem, "45465785975") == Trade(
        "gemini", "ALCX-USD", "ALCXUSD", "45465785975", 302.53, 0.992143, "buy",
        1624493651491000, 1624493666638480, "spot", 0.992143, 1.0)
    assert _find(gem, "45465818387")[3:7] == ("45465818387", 0.07946, 1020.482111, "buy")
    # BitMEX: partial snapshot entry; ISO time to µs; XBT-quoted alt future
    bmx = _result("BITMEX.ws.1.0")
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
    (xbt,) = _result("docs/BITMEX_TRADES.ws.docs").trades
    assert (xbt.symbol, xbt.amount, xbt.native_amount, xbt.contract_size, xbt.side) == (
        "BTC-USD-INV-PERP", 0.00814184, 200.0, 1.0, "sell")
    # Gate.io: create_time_ms keeps its sub-millisecond fraction
    gate = _result("GATEIO.ws.1.0")
    assert gate.trades[0] == Trade(
        "gateio", "DIS-USDT", "DIS_USDT", "816995772", 121.58, 0.201, "sell",
        1619093543708264, 1619093543755753, "spot", 0.201, 1.0)
    # HTX: gzip frame, tradeId (not the deprecated huge `id`)
    htx = _result("HUOBI.ws.44.0")
    assert htx.trades[0] == Trade(
        "huobi", "TRIO-ETH", "trioeth", "100045088885", 9.2e-07, 20995.88, "buy",
        1618678027940000, 1618678070909737, "spot", 20995.88, 1.0)
    # Bitget v1: array entries without an id -> stable hash of the fields as sent
    cult = _result("BITGET.ws.1.0").trades[0]
    assert cult[:3] == ("bitget", "CULT-USDT", "CULTUSDT")
    assert cult[4:8] == (3.507e-05, 271967.0, "sell", 1649290076333000)
    again = parse_frame(
        "bitget",
        '{"action":"update","arg":{"instType":"sp","channel":"trade","instId":"CULTUSDT"},'
        '"data":[["1649290076333","0.00003507","271967","sell"]]}', 1)
    assert again.trades[0].trade_id == cult.trade_id  # a resent trade gets the same id
    # Deribit (docs): perpetual and option symbols; USD amounts of the inverse perpetual
    # in BTC at the trade's price (10 USD at 8,950 = 0.00111732 BTC), option amounts in BTC
    der = _result("docs/DERIBIT_TRADES.ws.docs")
    assert [(t.symbol, t.trade_id, t.amount, t.native_amount, t.instrument_type, t.side)
            for t in der.trades] == [
        ("BTC-USD-INV-PERP", "48079254", 0.00111732, 10.0, "perpetual", "sell"),
        ("BTC-USD-INV-PERP", "48079255", 0.0279314, 250.0, "perpetual", "buy"),
        ("BTC-USD-INV-PERP", "48079256", 0.00446877, 40.0, "perpetual", "buy"),
        ("BTC-USD-200527-9000-C", "48079573", 0.1, 0.1, "option", "sell"),
    ]
    # Gemini's WebSocket API (docs): m = buyer is maker -> the taker sold; E in ns
    gemini_ws = _result("docs/GEMINI_WS.ws.docs")
    (gws,) = gemini_ws.trades
    assert gws == Trade("gemini", "BTC-USD", "btcusd", "2840140956529623", 120649.97,
                        0.00461909, "sell", 1759873803503023, 1759873803600000,
                        "spot", 0.00461909, 1.0)
    (gq,) = gemini_ws.quotes
    assert gq[3:] == (45000.5, 1.25, 45001.0, 0.75, 1751508438600117, 1751508438700000,
                      "spot", 1751505576085, 1.25, 0.75, 1.0)  # BASE sizes: the venue's
    # Bitget v2 (docs): futures instType -> -PERP; snapshot repeats keep their tradeId
    v2 = _result("docs/BITGET_V2.ws.docs")
    assert [t.trade_id for t in v2.trades].count("1000000001") == 2
    assert _find(v2, "1111111111111111111").symbol == "ETH-USDT-PERP"


# --- shapes ----------------------------------------------------------------------------------


def test_other_documented_shapes() -> None:
    """Shapes the captures lack: Kraken v1 ticker, Binance raw `trade` on a bare /ws stream,
    Coinbase tickers with sizes (sent since 2022)."""
    v1_ticker = (
        '[340,{"a":["5525.40000",1,"1.000"],"b":["5525.10000",1,"2.500"],'
        '"c":["5525.10000","0.00398963"]},"ticker","XBT/USD"]'
    )
    (quote,) = parse_frame("kraken", v1_ticker).quotes
    assert (quote.symbol, quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (
        "BTC-USD", 5525.1, 2.5, 5525.4, 1.0,
    )
    raw = (
        '{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100",'
        '"T":1672515782136,"m":true,"M":true}'
    )
    (trade,) = parse_frame("binance", raw).trades
    assert (trade.symbol, trade.trade_id, trade.side) == ("BNB-BTC", "12345", "sell")
    ticker = (
        '{"type":"ticker","sequence":1,"product_id":"BTC-USD","price":"2","best_bid":"1.5",'
        '"best_bid_size":"0.3","best_ask":"2.5","best_ask_size":"0.7",'
        '"time":"2022-10-19T23:28:22.061769Z"}'
    )
    (quote,) = parse_frame("coinbase", ticker).quotes
    assert (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (
        1.5, 0.3, 2.5, 0.7,
    )


# --- ignored and invalid frames --------------------------------------------------------------


def test_heartbeats_and_acks_are_ignored_not_invalid() -> None:
    for venue, frame in [
        ("kraken", '{"event":"heartbeat"}'),
        ("kraken", '{"channel":"heartbeat"}'),
        ("okx", "pong"),
        ("okx", '{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"}}'),
        ("bybit", '{"success":true,"ret_msg":"pong","conn_id":"x","req_id":"","op":"ping"}'),
        ("bitfinex", '[17470,"hb"]'),
        ("bitstamp", '{"event":"bts:heartbeat","channel":"","data":{"status":"success"}}'),
        ("binance", '{"result":null,"id":1}'),
        ("coinbase", '{"type":"heartbeat","sequence":1,"product_id":"BTC-USD"}'),
        ("bitmex", "pong"),
    ]:
        result = parse_frame(venue, frame)
        assert (result.ignored, result.invalid, result.trades) == (1, [], []), (venue, frame)


def test_bitfinex_funding_channels_are_ignored() -> None:
    sub = (
        '{"event":"subscribed","channel":"trades","chanId":339521,"symbol":"fUSD",'
        '"currency":"USD"}'
    )
    assert parse_frame("bitfinex", sub).ignored == 1
    result = parse_frame("bitfinex", '[339521,"fte",[133323543,1574694605000,-59.84,0.00023647,2]]')
    assert (result.trades, result.invalid, result.ignored) == ([], [], 1)


@pytest.mark.parametrize(
    ("venue", "frame", "reason"),
    [
        ("binance", "{not json", "not JSON"),
        ("coinbase", '{"type":"match","trade_id":1,"side":"buy","price":"1"}', "missing field"),
        ("okx", '{"arg":{"channel":"trades"},"data":[{"instId":"BTC-USDT","tradeId":"1",'
                '"px":"0","sz":"1","side":"buy","ts":"1"}]}', "non-positive"),
        ("bitstamp", '{"event":"trade","channel":"live_trades_btcusd","data":{"id":1,'
                     '"price_str":"1","amount_str":"-2","type":0,"microtimestamp":"1"}}',
         "non-positive"),
        ("bybit", '{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"s":"BTCUSDT","S":"Up",'
                  '"v":"1","p":"1","i":"x"}]}', "bad side"),
        ("kraken", '[1,[["nan","1","1.5","b","m",""]],"trade","XBT/USD"]', "non-positive"),
        ("bitfinex", '[999999999,"te",[1,2,3,4]]', "unknown channel id"),
        ("gemini", "{not json", "not JSON"),
        ("gemini@v2", '{"type":"trade","symbol":"BTCUSD","event_id":1,"timestamp":1624493670759,'
                      '"price":"-1","quantity":"1","side":"buy"}', "non-positive"),
        ("gemini", '{"E":1759873803503023900,"s":"btcusd","t":1,"p":"-1","q":"1","m":true}',
         "non-positive"),
        ("gemini", '{"id":"1","status":400,"error":"bad stream"}', "venue error 400"),
        ("gateio", '{"channel":"spot.trades","event":"update","result":{"id":1}}',
         "missing field"),
        ("bitmex", '{"table":"trade","action":"insert","data":[{"timestamp":'
                   '"2021-07-22T22:36:10Z","symbol":"XBTUSD","side":"Up","size":1,"price":1,'
                   '"trdMatchID":"a"}]}', "bad side"),
        ("deribit", '{"jsonrpc":"2.0","method":"subscription","params":{"channel":'
                    '"trades.X.100ms","data":{}}}', "not a list"),
        ("huobi", b"\x1f\x8b\x08\x00garbage", "undecodable gzip"),
        ("bitget", '{"action":"update","arg":{"instType":"sp","channel":"trade",'
                   '"instId":"BTCUSDT"},"data":[["1649290076333","0.1"]]}', "too few elements"),
    ],
)
def test_malformed_frames_are_invalid_with_a_reason(
    venue: str, frame: str | bytes, reason: str
) -> None:
    result = parse_frame(venue, frame)
    assert result.trades == [] and len(result.invalid) == 1
    assert reason in result.invalid[0].reason
    if isinstance(frame, str):  # bytes frames are kept escaped (see test_venues_common)
        assert result.invalid[0].raw == frame


# --- pings and sequences ---------------------------------------------------------------------


def test_pings_are_answered() -> None:
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


def test_deribit_trade_sequence_for_gap_checks() -> None:
    frames = [e.data for e in read_capture(corpus("docs/DERIBIT_TRADES.ws.docs"))
              if e.kind == "received"]
    seen = [pair for frame in frames for pair in get_venue("deribit").sequence_of(frame)]
    assert seen == [("BTC-PERPETUAL", 30289432), ("BTC-PERPETUAL", 30289433),
                    ("BTC-PERPETUAL", 30289434), ("BTC-27MAY20-9000-C", 1966)]
    assert get_venue("deribit").sequence_of('{"trade_seq": broken') == []
