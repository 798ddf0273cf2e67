"""Gemini market data v2 (`wss://api.gemini.com/v2/marketdata`), archived by Gemini in favour
of the WebSocket API at ws.gemini.com (gemini.py). Kept as a legacy variant of venue
`gemini`: a feed whose URL is an api.gemini.com host is parsed here (registry key gemini@v2).

One `l2` subscription per symbol list carries both the book and the trades:
- `trade` events, one trade each (`event_id` is the exchange's id, `side` the taker side);
- `l2_updates`: book changes (ignored); the first one per symbol also holds a `trades` list,
  the recent trades at subscribe time, counted as trades (dedup collapses repeats);
- `heartbeat` every 5 s from the server (ignored), no client pings needed.
"""

from __future__ import annotations

from dataflows.venues import declare
from dataflows.venues import instruments as ins
from dataflows.venues.common import FrameError, json_object, price_size, side_of
from dataflows.venues.declare import ms_us, quote_table, split_with, text_id, trades_or_ignored
from feedhouse.core.records import ParseResult

VENUE = "gemini"
KEY = "gemini@v2"
HOSTS = ("ws.gemini.com", "ws.sandbox.gemini.com", "api.gemini.com", "api.sandbox.gemini.com")
_QUOTES = quote_table(  # Gemini's quote currencies
    "USD", "GUSD", "USDT", "USDC", "DAI", "BTC", "ETH", "LTC", "BCH", "GBP", "EUR", "SGD",
)


def normalize(native: str) -> str:
    """'BTCUSD' -> 'BTC-USD', 'ZECLTC' -> 'ZEC-LTC', 'BTCGUSDPERP' -> 'BTC-GUSD-PERP'."""
    upper = native.upper()
    if upper.endswith("PERP") and len(upper) > 7:
        return f"{split_with(upper[:-4], _QUOTES)}-PERP"
    return split_with(upper, _QUOTES)


def native(symbol: str) -> str:
    """'BTC-USD' -> 'BTCUSD'; 'BTC-GUSD-PERP' -> 'BTCGUSDPERP'."""
    return symbol.upper().replace("-", "")

_SIDES = {"buy": "buy", "sell": "sell"}
# Known message types that carry no trade for us.
_IGNORED = frozenset({
    "heartbeat", "subscribed", "unsubscribed", "auction_open", "auction_indicative",
    "auction_result", "mark_price_updates", "funding_amount_updates",
})


_spec = ins.simple(KEY, normalize)


def _trade(entry: dict, received_ts: int):
    price, amount = price_size(entry, "price", "quantity")
    side = side_of(_SIDES, entry["side"])
    sym = entry["symbol"]
    if sym.__class__ is not str:
        raise FrameError(f"bad symbol {sym!r}")
    ident = entry.get("event_id", entry.get("tid"))
    return ins.trade(
        VENUE, _spec(sym), sym, text_id(ident), price, amount, side,
        ms_us(entry["timestamp"]), received_ts,
    )


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    msg = json_object(frame)
    kind = msg.get("type")
    if kind == "trade":
        return ParseResult(trades=[_trade(msg, received_ts)])
    if kind == "l2_updates":
        recent = msg.get("trades")
        if not recent:
            return ParseResult(ignored=1)
        if recent.__class__ is not list:
            raise FrameError("'trades' is not a list")
        return trades_or_ignored([_trade(t, received_ts) for t in recent])
    if kind in _IGNORED or kind.__class__ is str and kind.startswith("candles_"):
        return ParseResult(ignored=1)
    raise FrameError(f"unknown message (type={kind!r})")


def _frames(kind: str, symbols, channels) -> list[str]:
    if not channels or not symbols:
        return []
    subs = [{"name": "l2", "symbols": [native(s) for s in symbols]}]
    return [declare.dumps({"type": kind, "subscriptions": subs})]


VENUES = [
    declare.venue(
        VENUE, "wss://api.gemini.com/v2/marketdata", HOSTS, _parse, channels={"trades": "l2"},
        frames=_frames, native=native, normalize=normalize, key=KEY)
]
