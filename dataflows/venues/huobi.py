"""HTX (Huobi) spot market WebSocket (`wss://api.huobi.pro/ws`).

Every server frame is binary, gzip-compressed JSON. Pushes are {"ch", "ts", "tick"}:
- `market.<symbol>.trade.detail`: `tick.data` is a list of trades (`tradeId`, taker
  `direction`, `ts` in ms);
- `market.<symbol>.bbo`: best bid/ask -> quotes;
- depth, kline, ticker and detail channels -> ignored, as are subscribe acks ({"status"}).
Heartbeat: the server sends {"ping": N} every 5 s and hangs up unless the client answers
{"pong": N} (answer_ping); the ping frames themselves are counted as ignored.
"""

from __future__ import annotations

import zlib

from dataflows.venues import declare
from dataflows.venues.common import FrameError, book_top, price_size, side_of, trades_or_ignored
from dataflows.venues.declare import loads, ms_us, normalizer, quote_table, split_with, text_id
from dataflows.venues.instruments import update_id
from feedhouse.core.records import ParseResult, Quote, Trade

VENUE = "huobi"
_SIDES = {"buy": "buy", "sell": "sell"}
_QUOTES = quote_table(  # HTX spot quote currencies
    "USDT", "USDC", "USDD", "HUSD", "BTC", "ETH", "HT", "TRX", "EUR", "GBP",
)
_TOPIC = {"trades": "trade.detail", "quotes": "bbo"}
_GZIP = 16 + zlib.MAX_WBITS  # zlib wbits for a gzip header


def normalize(native: str) -> str:
    """'btcusdt' -> 'BTC-USDT'."""
    return split_with(native, _QUOTES)


def native(symbol: str) -> str:
    """'BTC-USDT' -> 'btcusdt'."""
    return symbol.replace("-", "").lower()


_normalize = normalizer(normalize)


def _unzip(frame: str | bytes) -> str | bytes:
    if frame.__class__ is str:
        return frame  # already text (a proxy or a test decompressed it)
    try:
        return zlib.decompress(frame, _GZIP)
    except zlib.error as exc:
        raise FrameError(f"undecodable gzip ({exc})") from None


def _unused_push(text: str | bytes) -> bool:
    """A depth/kline/ticker push, recognized from its leading channel name without decoding
    the JSON (most HTX traffic is depth; the book is not consumed, so it is not parsed)."""
    head = text[:96] if text.__class__ is bytes else text[:96].encode()
    if not head.startswith(b'{"ch":"market.'):
        return False
    end = head.find(b'"', 7)
    channel = head[7:end] if end > 0 else b""
    return bool(channel) and not channel.endswith((b".trade.detail", b".bbo"))


def _symbol(channel: str) -> str:
    parts = channel.split(".")
    if len(parts) < 3 or not parts[1]:
        raise FrameError(f"bad channel {channel!r}")
    return parts[1]


def _trades(sym: str, tick: dict, received_ts: int) -> list[Trade]:
    data = tick["data"]
    if data.__class__ is not list:
        raise FrameError("'tick.data' is not a list")
    symbol = _normalize(sym)
    out = []
    for entry in data:
        price, amount = price_size(entry, "price", "amount")
        side = side_of(_SIDES, entry["direction"], "direction")
        ident = entry.get("tradeId")
        out.append(Trade(
            VENUE, symbol, sym, text_id(ident if ident is not None else entry["id"]),
            price, amount, side, ms_us(entry["ts"]), received_ts, "spot", amount, 1.0,
        ))
    return out


def _quote(sym: str, tick: dict, ts: object, received_ts: int) -> Quote:
    bid, bid_size, ask, ask_size = book_top(tick, "bid", "bidSize", "ask", "askSize")
    stamp = tick.get("quoteTime", ts)
    return Quote(
        VENUE, _normalize(sym), sym, bid, bid_size, ask, ask_size, ms_us(stamp), received_ts,
        "spot", update_id(tick.get("seqId")),
    )


def _parse(frame: str | bytes, received_ts: int) -> ParseResult:
    text = _unzip(frame)
    if _unused_push(text):
        return ParseResult(ignored=1)
    msg = loads(text)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    channel = msg.get("ch")
    if channel is not None:
        if channel.__class__ is not str:
            raise FrameError(f"bad channel {channel!r}")
        tick = msg["tick"]
        if tick.__class__ is not dict:
            raise FrameError("'tick' is not an object")
        if channel.endswith(".trade.detail"):
            return trades_or_ignored(_trades(_symbol(channel), tick, received_ts))
        if channel.endswith(".bbo"):
            return ParseResult(quotes=[_quote(_symbol(channel), tick, msg.get("ts"),
                                              received_ts)])
        if channel.startswith("market."):
            return ParseResult(ignored=1)  # depth, kline, ticker, detail
        raise FrameError(f"unknown channel {channel!r}")
    if "ping" in msg or "pong" in msg or "status" in msg:
        return ParseResult(ignored=1)  # heartbeats, subscribe acks and errors
    raise FrameError("unknown message")


def _frames(op: str, symbols, channels) -> list[str]:
    topics = [f"market.{native(s)}.{c}" for c in channels for s in symbols]
    return [declare.dumps({op: topic, "id": str(i)}) for i, topic in enumerate(topics, 1)]


def _pong(msg) -> str | None:
    """{"ping": N} -> {"pong": N}."""
    return declare.dumps({"pong": msg["ping"]}) if msg.__class__ is dict and "ping" in msg else None


VENUES = [
    declare.venue(
        VENUE, "wss://api.huobi.pro/ws", ("api.huobi.pro", "api-aws.huobi.pro"), _parse,
        channels=_TOPIC, frames=_frames, ops=("sub", "unsub"), native=native,
        normalize=normalize,  # pings are tiny, so big frames are not even unzipped
        answer_ping=declare.ping_answer("", 128, _pong, lambda frame: loads(_unzip(frame))))
]
