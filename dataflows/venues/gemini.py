"""Gemini WebSocket API (`wss://ws.gemini.com`), venue `gemini`; the archived market data
v2 (api.gemini.com) is the legacy variant in gemini_v2.py, chosen by URL (`select`).

Streams are subscribed with {"id", "method": "subscribe", "params": ["btcusd@trade", ...]}
(acked {"id", "status": 200, "result": null}); pushes are bare objects:
- `{symbol}@trade`: {E event time ns, s, t trade id, p, q, m buyer is maker} -> trades
  (m: the buyer made, so the taker sold);
- `{symbol}@bookTicker`: {u update id, E ns, s, b, B, a, A} -> quotes;
- depth streams ({lastUpdateId} / depthUpdate) -> ignored; a status other than 200 -> invalid.
Symbols: 'btcusd' -> 'BTC-USD' (Gemini's quote currencies); perpetuals 'btcgusdperp' ->
'BTC-GUSD-PERP'. Sizes are in BASE.
"""

from __future__ import annotations

from dataflows.venues import declare
from dataflows.venues import gemini_v2 as v2
from dataflows.venues import instruments as ins
from dataflows.venues.common import book_top, price_size
from dataflows.venues.declare import FrameError, check_ts, json_object, text_id
from dataflows.venues.gemini_v2 import HOSTS, native, normalize
from feedhouse.core.records import ParseResult

VENUE = "gemini"
_STREAM = {"trades": "trade", "quotes": "bookTicker"}
_spec = ins.simple(VENUE, normalize)


def _ns(value: object) -> int:
    if value.__class__ is not int:
        raise FrameError(f"bad event time {value!r}")
    return check_ts(value // 1000)  # type: ignore[operator]


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
    if "t" in msg and "m" in msg:
        price, size = price_size(msg, "p", "q")
        maker = msg["m"]
        if maker.__class__ is not bool:
            raise FrameError(f"'m' is not a boolean: {maker!r}")
        sym = msg["s"]
        return ParseResult(trades=[ins.trade(
            VENUE, _spec(sym), sym, text_id(msg["t"]), price, size, "sell" if maker else "buy",
            _ns(msg["E"]), received_ts,
        )])
    if "u" in msg and "A" in msg:
        bid, bid_size, ask, ask_size = book_top(msg, "b", "B", "a", "A")
        update = msg["u"]
        if update.__class__ is not int or not 0 <= update < 2**63:
            raise FrameError(f"bad update id {update!r}")
        sym = msg["s"]
        return ParseResult(quotes=[ins.quote(
            VENUE, _spec(sym), sym, bid, bid_size, ask, ask_size, _ns(msg["E"]), received_ts,
            update,
        )])
    if "lastUpdateId" in msg or msg.get("e") == "depthUpdate":
        return ParseResult(ignored=1)
    if "status" in msg and "id" in msg:
        if msg["status"] != 200:
            raise FrameError(f"venue error {msg['status']!r}: {str(msg.get('error'))[:200]}")
        return ParseResult(ignored=1)  # subscribe / unsubscribe acks
    if "type" in msg:  # a v2 frame (a gemini feed on a v2 recording): the legacy parser
        return v2.VENUES[0].parse(frame, received_ts)
    raise FrameError("unknown message")


def _frames(method: str, symbols, channels) -> list[str]:
    params = [f"{native(s).lower()}@{c}" for c in channels for s in symbols]
    return [declare.dumps({"id": "1", "method": method, "params": params})] if params else []


def _select(url: str) -> str:
    return "gemini@v2" if "api.gemini.com" in url or "api.sandbox.gemini.com" in url else VENUE


VENUES = [
    declare.venue(
        VENUE, "wss://ws.gemini.com", HOSTS, _parse, channels=_STREAM, frames=_frames,
        native=native, normalize=normalize, select=_select)
]
