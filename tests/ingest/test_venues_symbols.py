"""Venue symbols: normalized <-> native mapping round trips, the native symbols in
subscribe frames and URLs, and product ids."""

from __future__ import annotations

import orjson
import pytest

from dataflows.venues import get_venue
from tests.support.venues import parsed_capture

# venue -> symbols whose mapping must round trip (normalized -> native -> normalized)
ROUND_TRIP_ONLY = {
    "binance": ["BTC-USDT", "XRP-BKRW"],
    "binance_delivery": ["ETH-USD-INV-PERP", "BTC-USD-INV-200626"],
    "binance_futures": ["BTC-USDT-PERP", "BTC-USDT-230331"],
    "bitfinex": ["BTC-USDT-PERP", "BTC-USDT", "TESTBTC-TESTUSD"],
    "bitstamp": ["ETH-EUR"],
    "bybit": ["SOL-USDT-PERP", "BTC-USDC-231229", "BTC-USDT-241227", "BTC-USDC-PERP"],
    "bybit@inverse": ["BTC-USD-INV-PERP", "BTC-USD-INV-230331"],
    "bybit@option": ["BTC-USDC-231229-40000-C"],
    "bybit@spot": ["SOL-USDT"],
    "coinbase": ["BTC-USDC-PERP", "ETH-USD"],
    "coinbase_exchange": ["ETH-USD"],
    "gemini": ["BTC-GUSD-PERP"],
    "kraken": ["BTC-EUR"],
    "okx": ["BTC-USD-INV-PERP", "BTC-USD-INV-220527", "BTC-USDT-PERP"],
}
# (venue, normalized symbol, native symbol or None where only the round trip is pinned)
ROUND_TRIPS = [
    *((venue, symbol, None) for venue, symbols in ROUND_TRIP_ONLY.items() for symbol in symbols),
    ("gemini", "BTC-USD", "BTCUSD"),
    ("gemini", "GRT-USD", "GRTUSD"),
    ("gateio", "BTC-USDT", "BTC_USDT"),
    ("bitmex", "BTC-USD-INV-PERP", "XBTUSD"),
    ("bitmex", "ETH-USD-PERP", "ETHUSD"),  # quanto, margined in XBT: not inverse
    ("bitmex", "ETH-USDT-PERP", "ETHUSDT"),
    ("bitmex", "BTC-USD-INV-210924", "XBTU21"),
    ("bitmex", "XRP-BTC-210924", "XRPU21"),
    ("bitmex", "BTC-USDT", "XBT_USDT"),
    ("deribit", "BTC-USD-INV-PERP", "BTC-PERPETUAL"),
    ("deribit", "ETH-USDC-PERP", "ETH_USDC-PERPETUAL"),
    ("deribit", "BTC-USD-210924-8000-P", "BTC-24SEP21-8000-P"),
    ("deribit", "BTC-USD-INV-200605", "BTC-5JUN20"),
    ("gemini", "BTC-GUSD-PERP", "BTCGUSDPERP"),
    ("deribit", "BTC-USDC", "BTC_USDC"),
    ("huobi", "BTC-USDT", "btcusdt"),
    ("huobi", "YFI-HUSD", "yfihusd"),
    ("bitget", "BTC-USDT", "BTCUSDT"),
    ("bitget", "BTC-USD-INV-231229", "BTCUSD_231229"),
]


@pytest.mark.parametrize(("venue", "normalized", "native"), ROUND_TRIPS)
def test_symbol_mapping_round_trips(venue: str, normalized: str, native: str | None) -> None:
    adapter = get_venue(venue)
    if native is not None:
        assert adapter.native_symbol(normalized) == native
    assert adapter.normalize_symbol(adapter.native_symbol(normalized)) == normalized


def test_gemini_symbols_use_gemini_quotes() -> None:
    symbols = {t.symbol for t in parsed_capture("GEMINI.ws.1.0")[1].trades}
    assert all("-" in s for s in symbols)
    assert get_venue("gemini").normalize_symbol("ZECLTC") == "ZEC-LTC"


def test_bitget_v1_product_ids() -> None:
    v = get_venue("bitget")
    assert v.normalize_symbol("BTCUSDT_SPBL") == "BTC-USDT"
    assert v.normalize_symbol("BTCUSDT_UMCBL") == "BTC-USDT-PERP"


def _sent(venue: str, symbols: list[str], channels: list[str]) -> list:
    # "venue#case": one more case of a venue
    return [orjson.loads(f) for f in get_venue(venue.split("#")[0]).subscribe(symbols, channels)]


def test_subscribe_urls_use_native_symbols() -> None:
    binance = get_venue("binance")
    url = binance.url_for(binance.url, ["BTC-USDT", "ETH-BTC"], ["trades", "quotes"])
    assert url == (
        "wss://stream.binance.com:9443/stream?streams="
        "btcusdt@aggTrade/ethbtc@aggTrade/btcusdt@bookTicker/ethbtc@bookTicker"
    )
    delivery = get_venue("binance_delivery")
    assert "btcusd_perp@aggTrade" in delivery.url_for(delivery.url, ["BTC-USD-INV-PERP"], ["trades"])


# venue -> (symbols, channels, the frames sent)
SUBSCRIBE = {
    "coinbase_exchange": (["BTC-USD"], ["trades"], [
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches"]}]),
    "coinbase": (["BTC-USD"], ["trades"], [
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "heartbeats"}]),
    "kraken": (["BTC-USD"], ["trades"], [
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}}]),
    "okx": (["BTC-USD"], ["trades"], [
        {"op": "subscribe", "args": [{"channel": "trades", "instId": "BTC-USD"}]}]),
    "bybit": (["BTC-USD"], ["trades"], [{"op": "subscribe", "args": ["publicTrade.BTCUSD"]}]),
    "bitfinex": (["BTC-USD"], ["trades"], [
        {"event": "subscribe", "channel": "trades", "symbol": "tBTCUSD"}]),
    "bitstamp": (["BTC-USD"], ["trades"], [
        {"event": "bts:subscribe", "data": {"channel": "live_trades_btcusd"}}]),
    "gemini": (["BTC-USD", "ETH-USD"], ["trades"], [
        {"id": "1", "method": "subscribe", "params": ["btcusd@trade", "ethusd@trade"]}]),
    "gemini@v2": (["BTC-USD", "ETH-USD"], ["trades"], [
        {"type": "subscribe", "subscriptions": [{"name": "l2", "symbols": ["BTCUSD", "ETHUSD"]}]}]),
    "bitmex": (["BTC-USD-INV-PERP"], ["trades", "quotes"], [
        {"op": "subscribe", "args": ["trade:XBTUSD", "quote:XBTUSD"]}]),
    "bitget": (["BTC-USDT", "ETH-USDT-PERP"], ["trades"], [
        {"op": "subscribe", "args": [
            {"instType": "SPOT", "channel": "trade", "instId": "BTCUSDT"},
            {"instType": "USDT-FUTURES", "channel": "trade", "instId": "ETHUSDT"}]}]),
    "bitget#coin": (["BTC-USD-INV-PERP"], ["trades"], [
        {"op": "subscribe", "args": [
            {"instType": "COIN-FUTURES", "channel": "trade", "instId": "BTCUSD"}]}]),
    "deribit#inverse": (["BTC-USD-INV-PERP", "BTC-USD-INV-200605"], ["trades"], [
        {"jsonrpc": "2.0", "id": 1, "method": "public/set_heartbeat", "params": {"interval": 30}},
        {"jsonrpc": "2.0", "id": 2, "method": "public/subscribe", "params": {
            "channels": ["trades.BTC-PERPETUAL.100ms", "trades.BTC-5JUN20.100ms"]}}]),
}


@pytest.mark.parametrize("venue", sorted(SUBSCRIBE))
def test_subscribe_frames_use_native_symbols(venue: str) -> None:
    symbols, channels, frames = SUBSCRIBE[venue]
    assert _sent(venue, symbols, channels) == frames


def test_subscribe_frames_checked_by_field() -> None:
    gate = _sent("gateio", ["BTC-USDT"], ["trades", "quotes"])
    assert [(g["channel"], g["event"], g["payload"]) for g in gate] == [
        ("spot.trades", "subscribe", ["BTC_USDT"]), ("spot.book_ticker", "subscribe", ["BTC_USDT"])]
    heartbeat, sub = _sent("deribit", ["BTC-USD-PERP"], ["trades", "quotes"])
    assert heartbeat["method"] == "public/set_heartbeat"
    assert sub["params"]["channels"] == ["trades.BTC-PERPETUAL.100ms", "quote.BTC-PERPETUAL"]
    assert [f["sub"] for f in _sent("huobi", ["BTC-USDT"], ["trades"])] == [
        "market.btcusdt.trade.detail"]
    assert orjson.loads(get_venue("bitmex").unsubscribe(["BTC-USD-PERP"], ["trades"])[0])["op"] \
        == "unsubscribe"
