"""What the endpoint decides: Bybit's market by URL path, Coinbase's and Gemini's API by
host, and per-connection parser state (Bitfinex channel ids) kept per feed."""

from __future__ import annotations

import pytest

from dataflows.frames import MessageBatch
from dataflows.parse.stage import parse_batch
from dataflows.sources.capture import parse_capture
from dataflows.venues import get_venue, venue_at, venue_for_url
from tests.support.paths import VENUE_DOCS

# Bybit's documented v5 publicTrade example (bybit-exchange.github.io/docs/v5/websocket/public/trade)
BYBIT = ('{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":'
         '1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
         '"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}')
BYBIT_INVERSE = BYBIT.replace("BTCUSDT", "BTCUSD").replace('"v":"0.001"', '"v":"100"')


def test_bybit_market_comes_from_the_endpoint() -> None:
    def parsed(market: str, frame: str = BYBIT):
        venue = venue_for_url(f"wss://stream.bybit.com/v5/public/{market}")
        (trade,) = venue.parse(frame, 1).trades
        return trade.venue, trade.symbol, trade.instrument_type, trade.amount

    assert parsed("spot") == ("bybit", "BTC-USDT", "spot", 0.001)
    assert parsed("linear") == ("bybit", "BTC-USDT-PERP", "perpetual", 0.001)
    # the same frame from /inverse is an inverse contract: its size is USD, not BTC
    assert parsed("inverse")[2:] == ("perpetual", 6.03191e-08)  # 0.001 USD / 16,578.50
    # so its symbol says so: three endpoints, three symbols for one message
    assert len({parsed(m)[1] for m in ("spot", "linear", "inverse")}) == 3
    assert parsed("inverse")[1] == "BTC-USDT-INV-PERP"
    # Bybit's inverse instruments are USD-quoted: 100 USD contracts at 16,578.50
    assert parsed("inverse", BYBIT_INVERSE) == ("bybit", "BTC-USD-INV-PERP", "perpetual", 0.00603191)
    # the linear endpoint's BTCUSD (were there one) would be another symbol
    assert parsed("linear", BYBIT_INVERSE)[1] == "BTC-USD-PERP"
    legacy = venue_for_url("wss://stream.bybit.com/realtime_public")  # the USDT perpetuals
    assert legacy.key == "bybit" and legacy.parse(BYBIT, 1).trades[0].symbol == "BTC-USDT-PERP"


@pytest.mark.parametrize(("venue", "url", "key"), [
    ("coinbase", "wss://advanced-trade-ws.coinbase.com", "coinbase"),
    ("coinbase", "wss://ws-feed.exchange.coinbase.com", "coinbase_exchange"),  # old configs
    ("coinbase", "ws://127.0.0.1:9000/COINBASE.ws.28.0", "coinbase"),
    ("gemini", "wss://ws.gemini.com", "gemini"),
    ("gemini", "wss://api.gemini.com/v2/marketdata", "gemini@v2"),
    ("bybit", "wss://stream.bybit.com/v5/public/spot", "bybit@spot"),
    ("bybit", "wss://stream.bybit.com/v5/public/option", "bybit@option"),
    ("binance", "wss://stream.binance.com:9443/stream", "binance"),
])
def test_feed_url_picks_the_variant(venue: str, url: str, key: str) -> None:
    assert venue_at(get_venue(venue), url).key == key


def test_coinbase_advanced_trade_feed_still_reads_exchange_frames() -> None:
    """A `coinbase` feed pointed at a ws-feed recording (the replay server) keeps working:
    Exchange-format frames go to the Exchange parser and are stored as coinbase_exchange."""
    match = ('{"type":"match","trade_id":280232,"maker_order_id":"a","taker_order_id":"b",'
             '"side":"sell","size":"985","price":"0.00001305","product_id":"SKL-BTC",'
             '"sequence":177100030,"time":"2021-04-17T16:43:37.089723Z"}')
    (trade,) = get_venue("coinbase").parse(match, 1).trades
    assert (trade.venue, trade.symbol, trade.side) == ("coinbase_exchange", "SKL-BTC", "buy")


def _bitfinex_batch(feed: str, symbol: str, price: float) -> MessageBatch:
    frames = [
        f'{{"event":"subscribed","channel":"trades","chanId":17,"symbol":"{symbol}"}}',
        f'[17,"te",[401597393,1574694475039,0.005,{price}]]',
    ]
    return MessageBatch(feed, "bitfinex", feed, 0, [(1_700_000_000_000_000, f) for f in frames], [])


def test_bitfinex_channel_ids_are_per_connection() -> None:
    """Two connections may both call their channel 17: each feed keeps its own map."""
    a = parse_batch(_bitfinex_batch("bfx-a", "tBTCUSD", 7000.0))
    b = parse_batch(_bitfinex_batch("bfx-b", "tETHUSD", 150.0))
    again = parse_batch(MessageBatch("bfx-a", "bitfinex", "bfx-a", 2, [
        (1_700_000_000_000_000, '[17,"tu",[401597394,1574694475040,0.5,7001.0]]')], []))
    assert [t.symbol for t in a.trades + b.trades + again.trades] == [
        "BTC-USD", "ETH-USD", "BTC-USD"]


def test_gemini_feed_still_reads_v2_frames() -> None:
    """A `gemini` feed on a v2 recording (the replay server on loopback) keeps working."""
    v2 = ('{"type":"trade","symbol":"BTCUSD","event_id":3575573053,"timestamp":1624493670759,'
          '"price":"33000.12","quantity":"0.01","side":"buy"}')
    (trade,) = get_venue("gemini").parse(v2, 1).trades
    assert (trade.venue, trade.symbol, trade.trade_id, trade.side) == (
        "gemini", "BTC-USD", "3575573053", "buy")


def test_coinbase_advanced_trade_documented_examples_parse_exactly() -> None:


    venue, result, summary = parse_capture(VENUE_DOCS / "COINBASE_ADVANCED.ws.docs")
    assert venue.name == "coinbase" and summary.invalid == 0
    (trade,) = result.trades  # documented side BUY is the maker's: the taker sold
    assert trade[:7] == ("coinbase", "ETH-USD", "ETH-USD", "000000000", 1260.01, 0.3, "sell")
    assert trade.exchange_ts == 1565815347265000  # 2019-08-14T20:42:27.265Z
    (quote,) = result.quotes
    assert quote[:7] == ("coinbase", "BTC-USD", "BTC-USD", 21931.98, 8000.21, 21933.98,
                         8038.07770938)
    assert quote.exchange_ts == 1675974637167359  # the message timestamp, to the µs
