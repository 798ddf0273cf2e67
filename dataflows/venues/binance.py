"""Binance: one stream format on four hosts (spot, USD-M futures, COIN-M futures, Binance.US).

Subscriptions live in the URL (combined streams `/stream?streams=a@aggTrade/b@bookTicker`);
frames arrive wrapped as {"stream", "data"} (or bare on raw `/ws/` streams).
trades: `aggTrade` (the id `a` is gap-checkable), also raw `trade`; quotes: `bookTicker`.
The server pings at the WebSocket protocol level; the client library answers.
Symbols: spot `BTCUSDT` -> `BTC-USDT`; USD-M `BTCUSDT` -> `BTC-USDT-PERP`, `BTCUSDT_230331`
-> `BTC-USDT-230331`; COIN-M (inverse) `BTCUSD_PERP` -> `BTC-USD-INV-PERP`, `BTCUSD_200626` ->
`BTC-USD-INV-200626`. COIN-M sizes are contracts of
100 USD (BTC) or 10 USD (others), converted to BASE (`contractSize` of dapi exchangeInfo).
Quotes carry the update id `u`.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import orjson

from dataflows.venues import instruments as ins
from dataflows.venues.base import Venue
from dataflows.venues.common import (
    INF,
    FrameError,
    OrjsonInt,
    check_quote,
    check_trade,
    fast_many,
    loads,
    num,
    safe_parse,
    split_concatenated,
)
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult, Trade

_STREAM = {"trades": "aggTrade", "quotes": "bookTicker"}
_MARKET_EPOCH_MS = MARKET_EPOCH_US // 1000  # Binance times are ms
# Non-market frames: depth and kline streams, SUBSCRIBE acks ({"result":null,"id":1}).
_IGNORED_EVENTS = frozenset(
    {"depthUpdate", "kline", "24hrTicker", "24hrMiniTicker", "markPriceUpdate",
     "forceOrder", "continuous_kline", "indexPriceUpdate", "contractInfo"}
)


# Binance quote assets beyond common.QUOTE_ASSETS, tried first ("XRPBKRW" is not XRPB-KRW).
_EXTRA_QUOTES = ("BKRW", "EURI", "USDS", "GYEN", "AEUR", "VAI", "COP", "CZK")


def _split(pair: str) -> str:
    for quote in _EXTRA_QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            return f"{pair[: -len(quote)]}-{quote}"
    return split_concatenated(pair)


def normalize(native: str) -> str:
    """'BTCUSDT' -> 'BTC-USDT'; COIN-M 'BTCUSD_PERP' -> 'BTC-USD-PERP' (delivery date kept)."""
    pair, sep, suffix = native.upper().partition("_")
    base = _split(pair)
    return f"{base}-{suffix}" if sep else base


def normalize_futures(native: str) -> str:
    """USD-M: 'BTCUSDT' (perpetual) -> 'BTC-USDT-PERP'; 'BTCUSDT_230331' -> 'BTC-USDT-230331'."""
    symbol = normalize(native)
    return symbol if "_" in native else f"{symbol}-PERP"


def native(symbol: str) -> str:
    """'BTC-USDT' -> 'BTCUSDT'; 'BTC-USD-PERP' -> 'BTCUSD_PERP'."""
    parts = symbol.upper().split("-")
    return "".join(parts[:2]) + "".join("_" + p for p in parts[2:])


def native_futures(symbol: str) -> str:
    """'BTC-USDT-PERP' -> 'BTCUSDT'; 'BTC-USDT-230331' -> 'BTCUSDT_230331'."""
    parts = symbol.upper().split("-")
    return native("-".join(parts[:-1] if parts[-1] == "PERP" else parts))


def normalize_delivery(native: str) -> str:
    """COIN-M contracts are inverse: 'BTCUSD_PERP' -> 'BTC-USD-INV-PERP'."""
    return ins.inverse_symbol(normalize(native))


def native_delivery(symbol: str) -> str:
    """'BTC-USD-INV-PERP' -> 'BTCUSD_PERP'."""
    return native(ins.plain_symbol(symbol.upper()))


def _coin_m(native: str) -> ins.Spec:
    """COIN-M contracts are 100 USD for BTC, 10 USD for the others (inverse)."""
    symbol = normalize(native)
    return ins.spec_of(symbol, 100.0 if symbol.startswith("BTC-") else 10.0, inverse=True)


def _coin_m_list(reply) -> list[tuple[str, ins.Spec]]:
    """dapi/v1/exchangeInfo: every symbol's `contractSize` (USD)."""
    return [(s["symbol"], ins.spec_of(normalize(s["symbol"]), float(s["contractSize"]), True))
            for s in reply["symbols"]]


_CATALOGS = {
    "binance": ins.simple("binance", normalize),
    "binance_us": ins.simple("binance_us", normalize),
    "binance_futures": ins.simple("binance_futures", normalize_futures),
    "binance_delivery": ins.Catalog("binance_delivery", _coin_m, _coin_m_list,
                                    ("https://dapi.binance.com/dapi/v1/exchangeInfo",)),
}


def _streams(to_native, symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    return [f"{to_native(s).lower()}@{_STREAM[c]}" for c in channels for s in symbols]


def _url_for(to_native):
    def url_for(base: str, symbols: Sequence[str], channels: Sequence[str]) -> str:
        root = base.split("?", 1)[0].rstrip("/")
        for tail in ("/stream", "/ws"):
            if root.endswith(tail):
                root = root[: -len(tail)]
        return f"{root}/stream?streams={'/'.join(_streams(to_native, symbols, channels))}"

    return url_for


def _subscribe(symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
    return []  # the subscription is the URL (url_for)


def _unsubscribe(to_native):
    def unsubscribe(symbols: Sequence[str], channels: Sequence[str]) -> list[str]:
        params = _streams(to_native, symbols, channels)
        return [orjson.dumps({"method": "UNSUBSCRIBE", "params": params, "id": 1}).decode()]

    return unsubscribe


def _update_id(data: dict) -> int:
    ident = data.get("u", 0)
    if ident.__class__ is not int or not 0 <= ident < 2**63:
        raise FrameError(f"bad update id: {ident!r}")
    return ident


def _parse(venue: str):
    spec_of = _CATALOGS[venue]

    def parse(frame: str | bytes, received_ts: int) -> ParseResult:
        msg = loads(frame)
        if msg.__class__ is not dict:
            raise FrameError("not a JSON object")
        data = msg.get("data", msg) if "stream" in msg else msg
        if data.__class__ is not dict:
            raise FrameError("'data' is not an object")
        event = data.get("e")
        if event == "aggTrade" or event == "trade":
            price = num(data["p"])
            amount = num(data["q"])
            check_trade(price, amount)
            ident = data["a"] if event == "aggTrade" else data["t"]
            if ident.__class__ is not int:
                raise FrameError(f"trade id is not an integer: {ident!r}")
            maker = data["m"]
            if maker.__class__ is not bool:
                raise FrameError(f"'m' is not a boolean: {maker!r}")
            ts = data["T"]
            if ts.__class__ is not int or ts <= 0:
                raise FrameError(f"bad trade time: {ts!r}")
            sym = data["s"]
            # m: the buyer is the maker, so the taker sold
            return ParseResult(trades=[ins.trade(
                venue, spec_of(sym), sym, str(ident), price, amount,
                "sell" if maker else "buy", ts * 1000, received_ts,
            )])
        if event == "bookTicker" or (event is None and "u" in data and "A" in data):
            bid, bid_size, ask, ask_size = (
                num(data["b"]), num(data["B"]), num(data["a"]), num(data["A"])
            )
            check_quote(bid, bid_size, ask, ask_size)
            ts = data.get("T") or data.get("E")  # futures stamp bookTicker; spot does not
            if ts is not None and (ts.__class__ is not int or ts <= 0):
                raise FrameError(f"bad quote time: {ts!r}")
            sym = data["s"]
            return ParseResult(quotes=[ins.quote(
                venue, spec_of(sym), sym, bid, bid_size, ask, ask_size,
                ts * 1000 if ts else received_ts, received_ts, _update_id(data),
            )])
        if event in _IGNORED_EVENTS or ("result" in msg and "id" in msg):
            return ParseResult(ignored=1)
        if event is None and "lastUpdateId" in data:
            return ParseResult(ignored=1)  # partial book depth (depth5/10/20 streams)
        if "code" in msg:
            raise FrameError(f"venue error {msg['code']!r}: {str(msg.get('msg'))[:200]}")
        raise FrameError(f"unknown message (e={event!r})")

    return safe_parse(venue, parse)


# Fast path (parse_many): combined-stream trade frames through a typed msgspec decoder.
# Every field is declared and typed (unknown fields refused), so the decoder validates
# the whole frame as strictly as orjson + `parse` do (string price/qty, 64-bit integer
# id and times, boolean m); a frame it refuses goes through `parse`.
class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", forbid_unknown_fields=True):
    E: OrjsonInt
    s: str
    a: OrjsonInt
    p: str
    q: str
    f: OrjsonInt
    l: OrjsonInt  # noqa: E741 - Binance's field name
    T: OrjsonInt
    m: bool
    M: bool = False  # spot only
    nq: str = ""  # futures, newer


class _RawTrade(msgspec.Struct, tag_field="e", tag="trade", forbid_unknown_fields=True):
    E: OrjsonInt
    s: str
    t: OrjsonInt
    p: str
    q: str
    T: OrjsonInt
    m: bool
    b: OrjsonInt = 0  # buyer/seller order ids (older spot)
    a: OrjsonInt = 0
    M: bool = False
    X: str = ""  # futures: trade type


class _Combined(msgspec.Struct, forbid_unknown_fields=True):
    stream: str  # must be present (else `parse` reads the frame as unwrapped)
    data: _AggTrade | _RawTrade


_decode_combined = msgspec.json.Decoder(_Combined).decode


_new = tuple.__new__  # Trade(...) without the NamedTuple's Python-level __new__


def _fast(venue: str):
    spec_of = _CATALOGS[venue]
    cached = spec_of.cached

    def fast(frame: str | bytes, received_ts: int, trades: list) -> int:
        data = _decode_combined(frame).data
        price = float(data.p)
        amount = float(data.q)
        if not (0.0 < price < INF and 0.0 < amount < INF):  # check_trade, inline
            return 0
        ts = data.T
        if ts < _MARKET_EPOCH_MS:  # the slow path says why
            return 0
        sym = data.s
        ident = data.a if data.__class__ is _AggTrade else data.t
        spec = cached(sym) or spec_of(sym)
        trades.append(_new(Trade, (
            venue, spec.symbol, sym, str(ident), price,
            amount if spec.contract_size == 1.0 and not spec.inverse else spec.base(amount, price),
            "sell" if data.m else "buy", ts * 1000, received_ts, spec.kind, amount,
            spec.contract_size,
        )))
        return 1

    return fast


def _venue(name: str, url: str, hosts: tuple[str, ...], to_native=native,
           normalize_symbol=normalize) -> Venue:
    parse = _parse(name)
    return Venue(
        name=name,
        url=url,
        hosts=hosts,
        parse=parse,
        parse_many=fast_many(parse, 'rade"', _fast(name)),  # "aggTrade" / "trade"
        subscribe=_subscribe,
        unsubscribe=_unsubscribe(to_native),
        url_for=_url_for(to_native),
        native_symbol=to_native,
        normalize_symbol=normalize_symbol,
        channels=("trades", "quotes"),
        catalog=_CATALOGS[name],
    )


VENUES = [
    _venue("binance", "wss://stream.binance.com:9443/stream",
           ("stream.binance.com", "data-stream.binance.vision")),
    _venue("binance_futures", "wss://fstream.binance.com/stream", ("fstream.binance.com",),
           native_futures, normalize_futures),
    _venue("binance_delivery", "wss://dstream.binance.com/stream", ("dstream.binance.com",),
           native_delivery, normalize_delivery),
    _venue("binance_us", "wss://stream.binance.us:9443/stream", ("stream.binance.us",)),
]
