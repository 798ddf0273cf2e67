"""Venue adapters A (Binance x4, Coinbase, Kraken, OKX, Bybit, Bitfinex, Bitstamp):
golden output of every capture of these venues, exact counts, and venue semantics.

Golden files: tests/golden/<capture>.trades.jsonl / .quotes.jsonl, regenerated with
`tests/golden/regenerate.py NAME` and checked by hand (they are the spec).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from dataflows.sources.capture import parse_capture, quote_json, trade_json
from dataflows.venues import get_venue, venue_for_url
from feedhouse.core.records import validate_quotes, validate_trades
from tests.support.paths import FEEDHOUSE, ROOT, VENUE_DOCS, corpus

GOLDEN = ROOT / "tests" / "golden"
DOCS = VENUE_DOCS

# capture -> (venue, frames, trades, quotes, ignored, invalid)
EXPECTED = {
    "BINANCE.ws.1.0": ("binance", 265, 2, 84, 179, 0),
    "BINANCE_FUTURES.ws.1.0": ("binance_futures", 1535, 91, 613, 831, 0),
    "BITFINEX.ws.11.0": ("bitfinex", 1693, 210, 21, 1665, 0),
    "BITSTAMP.ws.1.0": ("bitstamp", 747, 10, 0, 737, 0),
    "BYBIT.ws.25.0": ("bybit", 3342, 101, 0, 3276, 0),
    "COINBASE.ws.28.0": ("coinbase_exchange", 9946, 107, 107, 9732, 0),
    "KRAKEN.ws.48.0": ("kraken", 49, 10, 0, 41, 0),
    "OKX.ws.1.0": ("okx", 410, 74, 28, 308, 0),
    # built from the venues' API documentation (no real capture of these formats)
    "docs/BINANCE_DELIVERY.ws.docs": ("binance_delivery", 4, 2, 1, 1, 0),
    "docs/BITFINEX_TRADES.ws.docs": ("bitfinex", 10, 6, 1, 4, 0),
    "docs/BYBIT_V5.ws.docs": ("bybit", 4, 3, 0, 2, 0),
    "docs/COINBASE_ADVANCED.ws.docs": ("coinbase", 3, 1, 1, 1, 0),
    "docs/KRAKEN_V2.ws.docs": ("kraken", 8, 3, 1, 5, 0),
}


def _golden(name: str, kind: str) -> list[bytes]:
    path = GOLDEN / f"{Path(name).name}.{kind}.jsonl"
    return path.read_bytes().splitlines() if path.exists() else []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_matches_golden(name: str) -> None:
    venue_name, frames, trades, quotes, ignored, invalid = EXPECTED[name]
    venue, result, summary = parse_capture(corpus(name))
    assert venue.name == venue_name
    assert (summary.frames, summary.trades, summary.quotes, summary.ignored, summary.invalid) == (
        frames, trades, quotes, ignored, invalid,
    )
    # every frame is accounted for exactly once (one frame may hold several trades)
    assert summary.ignored + summary.invalid <= summary.frames
    assert [orjson.dumps(trade_json(t)) for t in result.trades] == _golden(name, "trades")
    assert [orjson.dumps(quote_json(q)) for q in result.quotes] == _golden(name, "quotes")
    validate_trades(result.trades)  # the market.trades contract holds for every record
    validate_quotes(result.quotes)


def test_docs_fixtures_say_where_they_come_from() -> None:
    for name in (n for n in EXPECTED if n.startswith("docs/")):
        first = (corpus(name)).read_text().splitlines()[0]
        assert first.startswith("# Not a recording: built from") and "documentation" in first


@pytest.mark.integration
def test_capture_parse_cli_reproduces_golden() -> None:
    path = corpus("BINANCE.ws.1.0")
    done = subprocess.run(
        [FEEDHOUSE, "capture", "parse", str(path)], capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == _golden("BINANCE.ws.1.0", "trades")
    assert b"(binance)" in done.stderr  # venue inferred from stream.binance.com:9443
    assert b"frames=265 trades=2 quotes=84 ignored=179 invalid=0" in done.stderr


@pytest.mark.parametrize(
    ("url", "venue"),
    [
        ("wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade", "binance"),
        ("wss://stream.binance.com/ws/btcusdt@trade", "binance"),
        ("wss://fstream.binance.com/stream?streams=btcusdt@aggTrade", "binance_futures"),
        ("wss://dstream.binance.com/stream?streams=btcusd_perp@aggTrade", "binance_delivery"),
        ("wss://stream.binance.us:9443/stream?streams=btcusd@aggTrade", "binance_us"),
        ("wss://ws-feed.pro.coinbase.com", "coinbase_exchange"),
        ("wss://ws-feed.exchange.coinbase.com", "coinbase_exchange"),
        ("wss://advanced-trade-ws.coinbase.com", "coinbase"),
        ("wss://ws.kraken.com", "kraken"),
        ("wss://ws.kraken.com/v2", "kraken"),
        ("wss://ws.okx.com:8443/ws/v5/public", "okx"),
        ("wss://stream.bybit.com/realtime_public", "bybit"),
        ("wss://stream.bybit.com/v5/public/spot", "bybit"),
        ("wss://api.bitfinex.com/ws/2", "bitfinex"),
        ("wss://api-pub.bitfinex.com/ws/2", "bitfinex"),
        ("wss://ws.bitstamp.net/", "bitstamp"),
    ],
)
def test_every_host_maps_to_its_venue(url: str, venue: str) -> None:
    found = venue_for_url(url)
    assert found is not None and found.name == venue


# --- semantics the golden files rest on, on single frames ----------------------------------


def _parse(venue: str, frame: str):
    return get_venue(venue).parse(frame, 1_700_000_000_000_000)


def test_binance_buyer_maker_means_taker_sold() -> None:
    frame = (
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":7,'
        '"p":"100.5","q":"0.25","f":1,"l":2,"T":1633998523963,"m":true,"M":true}}'
    )
    (trade,) = _parse("binance_us", frame).trades
    assert (trade.venue, trade.symbol, trade.trade_id, trade.side) == (
        "binance_us", "BTC-USDT", "7", "sell",
    )
    assert (trade.price, trade.amount, trade.exchange_ts) == (100.5, 0.25, 1633998523963000)


def test_coinbase_side_is_the_takers() -> None:
    frame = (
        '{"type":"match","trade_id":5,"side":"buy","size":"1","price":"2","product_id":"BTC-USD",'
        '"sequence":9,"time":"2021-04-17T16:43:37.089723Z"}'
    )
    (trade,) = _parse("coinbase", frame).trades
    assert trade.side == "sell"  # the maker bought
    assert trade.exchange_ts == 1618677817089723


def test_kraken_v1_trade_id_is_stable_and_distinct() -> None:
    one = '[993,[["354.11000000","0.89594024","1618678142.557535","s","l",""]],"trade","XMR/USD"]'
    other = one.replace('"s","l"', '"b","l"')
    first = _parse("kraken", one).trades[0]
    again = get_venue("kraken").parse(one, 1_800_000_000_000_000).trades[0]
    assert first.trade_id == again.trade_id  # a resent trade keeps its id
    assert _parse("kraken", other).trades[0].trade_id != first.trade_id
    assert first.exchange_ts == 1618678142557535  # exact, no float rounding
    xbt = '[1,[["50000.1","0.1","1618678142.5","b","m",""]],"trade","XBT/USD"]'
    assert _parse("kraken", xbt).trades[0].symbol == "BTC-USD"


def test_bitfinex_te_and_tu_share_the_exchange_id() -> None:
    trades = parse_capture(DOCS / "BITFINEX_TRADES.ws.docs")[1].trades
    updates = [t for t in trades if t.trade_id in ("401597395", "401597396")]
    assert len(updates) == 4
    assert len({(t.trade_id, t.price, t.amount, t.side, t.exchange_ts) for t in updates}) == 2
    assert {t.side for t in updates} == {"buy", "sell"}  # AMOUNT < 0: the taker sold


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
    ]:
        result = _parse(venue, frame)
        assert (result.ignored, result.invalid, result.trades) == (1, [], []), (venue, frame)


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
    ],
)
def test_malformed_frames_are_invalid_with_a_reason(venue: str, frame: str, reason: str) -> None:
    result = _parse(venue, frame)
    assert result.trades == [] and len(result.invalid) == 1
    assert reason in result.invalid[0].reason and result.invalid[0].raw == frame


def test_subscribe_frames_use_native_symbols() -> None:
    binance = get_venue("binance")
    url = binance.url_for(binance.url, ["BTC-USDT", "ETH-BTC"], ["trades", "quotes"])
    assert url == (
        "wss://stream.binance.com:9443/stream?streams="
        "btcusdt@aggTrade/ethbtc@aggTrade/btcusdt@bookTicker/ethbtc@bookTicker"
    )
    delivery = get_venue("binance_delivery")
    assert "btcusd_perp@aggTrade" in delivery.url_for(delivery.url, ["BTC-USD-PERP"], ["trades"])
    expected = {
        "coinbase_exchange": [
            {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches"]}],
        "coinbase": [
            {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"},
            {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "heartbeats"}],
        "kraken": [{"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}}],
        "okx": [{"op": "subscribe", "args": [{"channel": "trades", "instId": "BTC-USD"}]}],
        "bybit": [{"op": "subscribe", "args": ["publicTrade.BTCUSD"]}],
        "bitfinex": [{"event": "subscribe", "channel": "trades", "symbol": "tBTCUSD"}],
        "bitstamp": [{"event": "bts:subscribe", "data": {"channel": "live_trades_btcusd"}}],
    }
    for name, frames in expected.items():
        sent = [orjson.loads(f) for f in get_venue(name).subscribe(["BTC-USD"], ["trades"])]
        assert sent == frames, name


@pytest.mark.parametrize(
    ("venue", "symbol"),
    [
        ("binance", "BTC-USDT"), ("binance_delivery", "ETH-USD-PERP"), ("kraken", "BTC-EUR"),
        ("bybit", "SOL-USDT-PERP"), ("bybit", "BTC-USD-230331"), ("bybit", "BTC-USDC-231229"),
        ("bybit", "BTC-USDT-241227"), ("bybit", "BTC-USDC-PERP"), ("bybit@spot", "SOL-USDT"),
        ("bybit@inverse", "BTC-USD-PERP"), ("bybit@option", "BTC-USDC-231229-40000-C"),
        ("binance", "XRP-BKRW"), ("binance_futures", "BTC-USDT-PERP"),
        ("binance_futures", "BTC-USDT-230331"), ("gemini", "BTC-GUSD-PERP"),
        ("coinbase", "BTC-USDC-PERP"), ("bitfinex", "BTC-USDT-PERP"),
        ("bitfinex", "BTC-USDT"), ("bitfinex", "TESTBTC-TESTUSD"),
        ("bitstamp", "ETH-EUR"), ("okx", "BTC-USD-PERP"), ("okx", "BTC-USD-220527"),
        ("coinbase", "ETH-USD"), ("coinbase_exchange", "ETH-USD"),
    ],
)
def test_symbol_mapping_round_trips(venue: str, symbol: str) -> None:
    adapter = get_venue(venue)
    assert adapter.normalize_symbol(adapter.native_symbol(symbol)) == symbol


def test_other_documented_shapes() -> None:
    """Shapes the captures lack: Kraken v1 ticker, Binance raw `trade` on a bare /ws stream,
    Coinbase tickers with sizes (sent since 2022)."""
    v1_ticker = (
        '[340,{"a":["5525.40000",1,"1.000"],"b":["5525.10000",1,"2.500"],'
        '"c":["5525.10000","0.00398963"]},"ticker","XBT/USD"]'
    )
    (quote,) = _parse("kraken", v1_ticker).quotes
    assert (quote.symbol, quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (
        "BTC-USD", 5525.1, 2.5, 5525.4, 1.0,
    )
    raw = (
        '{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100",'
        '"T":1672515782136,"m":true,"M":true}'
    )
    (trade,) = _parse("binance", raw).trades
    assert (trade.symbol, trade.trade_id, trade.side) == ("BNB-BTC", "12345", "sell")
    ticker = (
        '{"type":"ticker","sequence":1,"product_id":"BTC-USD","price":"2","best_bid":"1.5",'
        '"best_bid_size":"0.3","best_ask":"2.5","best_ask_size":"0.7",'
        '"time":"2022-10-19T23:28:22.061769Z"}'
    )
    (quote,) = _parse("coinbase", ticker).quotes
    assert (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size) == (
        1.5, 0.3, 2.5, 0.7,
    )


def test_bitfinex_funding_channels_are_ignored() -> None:
    sub = (
        '{"event":"subscribed","channel":"trades","chanId":339521,"symbol":"fUSD",'
        '"currency":"USD"}'
    )
    assert _parse("bitfinex", sub).ignored == 1
    result = _parse("bitfinex", '[339521,"fte",[133323543,1574694605000,-59.84,0.00023647,2]]')
    assert (result.trades, result.invalid, result.ignored) == ([], [], 1)
