"""Binance: one stream format on four hosts (spot, USD-M futures, COIN-M futures, Binance.US).

Subscriptions live in the URL (combined streams `/stream?streams=a@aggTrade/b@bookTicker`);
frames arrive wrapped as {"stream", "data"} (or bare on raw `/ws/` streams).
trades: `aggTrade` (the id `a` is gap-checkable), also raw `trade`; quotes: `bookTicker`
(update id `u`). The server pings at the WebSocket protocol level; the client answers.
Symbols: spot `BTCUSDT` -> `BTC-USDT`; USD-M `BTCUSDT` -> `BTC-USDT-PERP`, `BTCUSDT_230331`
-> `BTC-USDT-230331`; COIN-M `BTCUSD_PERP` -> `BTC-USD-PERP`. COIN-M sizes are contracts of
100 USD (BTC) or 10 USD (others), converted to BASE (`contractSize` of dapi exchangeInfo).
"""

from __future__ import annotations

import msgspec

from dataflows.venues import declare
from dataflows.venues import instruments as ins
from dataflows.venues.common import INF, OrjsonInt, book_top, int_id, price_size
from dataflows.venues.declare import FrameError, json_object, split_concatenated
from feedhouse.core.records import MARKET_EPOCH_US, ParseResult, Trade

_STREAM = {"trades": "aggTrade", "quotes": "bookTicker"}
# Non-market frames: depth and kline streams, SUBSCRIBE acks ({"result":null,"id":1}).
_IGNORED_EVENTS = frozenset({"depthUpdate", "kline", "24hrTicker", "24hrMiniTicker",
                             "markPriceUpdate", "forceOrder", "continuous_kline",
                             "indexPriceUpdate", "contractInfo"})
# Binance quote assets beyond common.QUOTE_ASSETS, tried first ("XRPBKRW" is not XRPB-KRW).
_EXTRA_QUOTES = ("BKRW", "EURI", "USDS", "GYEN", "AEUR", "VAI", "COP", "CZK")


def normalize(native: str) -> str:
    """'BTCUSDT' -> 'BTC-USDT'; COIN-M 'BTCUSD_PERP' -> 'BTC-USD-PERP' (delivery date kept)."""
    pair, sep, suffix = native.upper().partition("_")
    quote = next((q for q in _EXTRA_QUOTES if pair.endswith(q) and len(pair) > len(q)), "")
    base = f"{pair[: -len(quote)]}-{quote}" if quote else split_concatenated(pair)
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


def _url_for(to_native):
    def url_for(base: str, symbols, channels) -> str:
        root = base.split("?", 1)[0].rstrip("/").removesuffix("/stream").removesuffix("/ws")
        streams = "/".join(f"{to_native(s).lower()}@{_STREAM[c]}" for c in channels
                           for s in symbols)
        return f"{root}/stream?streams={streams}"

    return url_for


def _unsubscribe(to_native):  # subscribing is the URL (url_for)
    def frames(op: str, symbols, channels) -> list[str]:
        params = [f"{to_native(s).lower()}@{c}" for c in channels for s in symbols]
        return [declare.dumps({"method": op, "params": params, "id": 1})] if op else []

    return frames


def _parse(venue: str):
    spec_of = _CATALOGS[venue]

    def parse(frame: str | bytes, received_ts: int) -> ParseResult:
        msg = json_object(frame)
        data = msg.get("data", msg) if "stream" in msg else msg
        if data.__class__ is not dict:
            raise FrameError("'data' is not an object")
        event = data.get("e")
        if event == "aggTrade" or event == "trade":
            price, amount = price_size(data, "p", "q")
            ident = int_id(data["a"] if event == "aggTrade" else data["t"])
            if (maker := data["m"]).__class__ is not bool:
                raise FrameError(f"'m' is not a boolean: {maker!r}")
            if (ts := data["T"]).__class__ is not int or ts <= 0:
                raise FrameError(f"bad trade time: {ts!r}")
            sym = data["s"]  # m: the buyer is the maker, so the taker sold
            return ParseResult(trades=[ins.trade(venue, spec_of(sym), sym, ident, price,
                                                 amount, "sell" if maker else "buy", ts * 1000,
                                                 received_ts)])
        if event == "bookTicker" or (event is None and "u" in data and "A" in data):
            bid, bid_size, ask, ask_size = book_top(data, "b", "B", "a", "A")
            ts = data.get("T") or data.get("E")  # futures stamp bookTicker; spot does not
            if ts is not None and (ts.__class__ is not int or ts <= 0):
                raise FrameError(f"bad quote time: {ts!r}")
            sym = data["s"]
            spec = spec_of(sym)
            if (ident := data.get("u", 0)).__class__ is not int or not 0 <= ident < 2**63:
                raise FrameError(f"bad update id: {ident!r}")
            return ParseResult(quotes=[ins.quote(venue, spec, sym, bid, bid_size, ask,
                                                 ask_size, ts * 1000 if ts else received_ts,
                                                 received_ts, ident)])
        if event in _IGNORED_EVENTS or ("result" in msg and "id" in msg):
            return ParseResult(ignored=1)
        if event is None and "lastUpdateId" in data:
            return ParseResult(ignored=1)  # partial book depth (depth5/10/20 streams)
        if "code" in msg:
            raise FrameError(f"venue error {msg['code']!r}: {str(msg.get('msg'))[:200]}")
        raise FrameError(f"unknown message (e={event!r})")

    return parse


# Fast path (parse_many): combined-stream trade frames through a typed msgspec decoder;
# every field declared and typed (unknown ones refused), so it is as strict as `parse`.
_AggTrade = msgspec.defstruct("_AggTrade", [
    ("E", OrjsonInt), ("s", str), ("a", OrjsonInt), ("p", str), ("q", str), ("f", OrjsonInt),
    ("l", OrjsonInt), ("T", OrjsonInt), ("m", bool), ("M", bool, False),  # M: spot only
    ("nq", str, ""),  # futures, newer
], tag_field="e", tag="aggTrade", forbid_unknown_fields=True)
_RawTrade = msgspec.defstruct("_RawTrade", [
    ("E", OrjsonInt), ("s", str), ("t", OrjsonInt), ("p", str), ("q", str), ("T", OrjsonInt),
    ("m", bool), ("b", OrjsonInt, 0), ("a", OrjsonInt, 0),  # b, a: order ids (older spot)
    ("M", bool, False), ("X", str, ""),  # X: futures trade type
], tag_field="e", tag="trade", forbid_unknown_fields=True)
# `stream` must be present (else `parse` reads the frame as unwrapped)
_Combined = msgspec.defstruct("_Combined", [("stream", str), ("data", _AggTrade | _RawTrade)],
                              forbid_unknown_fields=True)
_decode_combined, _new = msgspec.json.Decoder(_Combined).decode, tuple.__new__


def _fast(venue: str):
    spec_of = _CATALOGS[venue]
    cached = spec_of.cached

    def fast(frame: str | bytes, received_ts: int, trades: list) -> int:
        data = _decode_combined(frame).data
        price, amount, ts, sym = float(data.p), float(data.q), data.T, data.s
        if not (0.0 < price < INF and 0.0 < amount < INF) or ts < MARKET_EPOCH_US // 1000:
            return 0  # the slow path says why
        spec = cached(sym) or spec_of(sym)
        trades.append(_new(Trade, (
            venue, spec.symbol, sym, str(data.a if data.__class__ is _AggTrade else data.t),
            price,
            amount if spec.contract_size == 1.0 and not spec.inverse else spec.base(amount, price),
            "sell" if data.m else "buy", ts * 1000, received_ts, spec.kind, amount,
            spec.contract_size,
        )))
        return 1

    return fast


def _agg(msg) -> list[tuple[str, int]]:
    data = msg.get("data", msg)  # aggTrade ids `a` are consecutive per symbol
    return [(data["s"], int(data["a"]))] if data.get("e") == "aggTrade" else []


def _venue(name: str, url: str, hosts: tuple[str, ...], to_native=native, to_symbol=normalize):
    return declare.venue(
        name, url, hosts, _parse(name), channels=_STREAM, frames=_unsubscribe(to_native),
        ops=("", "UNSUBSCRIBE"), native=to_native, normalize=to_symbol,
        fast=('rade"', _fast(name)), url_for=_url_for(to_native),  # (agg)Trade
        catalog=_CATALOGS[name], sequence_of=declare.sequence_check("aggTrade", _agg))


VENUES = [
    _venue("binance", "wss://stream.binance.com:9443/stream",
           ("stream.binance.com", "data-stream.binance.vision")),
    _venue("binance_futures", "wss://fstream.binance.com/stream", ("fstream.binance.com",),
           native_futures, normalize_futures),
    _venue("binance_delivery", "wss://dstream.binance.com/stream", ("dstream.binance.com",)),
    _venue("binance_us", "wss://stream.binance.us:9443/stream", ("stream.binance.us",)),
]
