"""Bitfinex v2 WebSocket: `trades` (snapshot, `te` and `tu`), `ticker` for best bid/ask.

Data frames are arrays keyed by a numeric channel id announced in the `subscribed`
event. Ids are per connection (two connections may both have a channel 17), so the map
chanId -> (channel, symbol) lives in a `Session`, one per connection: the pipeline makes
one per feed (`Venue.session`), a capture parse one per file. Each trade
arrives twice, as `te` (executed) then `tu` (written): both are emitted with the same
exchange id and dedup collapses them. With the sequence flag (conf 65536) every frame
ends with a sequence number. `hb` heartbeats are ignored. AMOUNT < 0 means the taker sold.
"""

from __future__ import annotations

from dataflows.venues import declare
from dataflows.venues.common import check_quote, check_trade, num
from dataflows.venues.declare import FrameError, loads, normalizer, safe_parse
from dataflows.venues.instruments import kind_of
from feedhouse.core.records import ParseResult, Quote, Trade

NAME = "bitfinex"
_CHANNEL = {"trades": "trades", "quotes": "ticker"}
_ALIASES = {"UST": "USDT", "UDC": "USDC"}  # Bitfinex tickers for Tether / USD Coin
_NATIVE_ALIASES = {v: k for k, v in _ALIASES.items()}
_TRADE_EVENTS = frozenset({"te", "tu"})
_MAX_CHANNELS = 100_000


def normalize(native: str) -> str:
    """'tBTCUSD' -> 'BTC-USD'; 'tTESTBTC:TESTUSD' -> 'TESTBTC-TESTUSD'; UST -> USDT;
    perpetuals 'tBTCF0:USTF0' -> 'BTC-USDT-PERP' (sizes in BASE)."""
    pair = native[1:] if native[:1] in ("t", "f") else native
    base, sep, quote = pair.partition(":")
    if base.endswith("F0") and quote.endswith("F0") and len(base) > 2:
        return f"{normalize(f'{base[:-2]}:{quote[:-2]}')}-PERP"
    if not sep:
        if len(pair) != 6:
            return pair.upper()
        base, quote = pair[:3], pair[3:]
    base, quote = base.upper(), quote.upper()
    return f"{_ALIASES.get(base, base)}-{_ALIASES.get(quote, quote)}"


def native(symbol: str) -> str:
    base, _, quote = symbol.upper().partition("-")
    quote, _, perp = quote.partition("-")
    base, quote = _NATIVE_ALIASES.get(base, base), _NATIVE_ALIASES.get(quote, quote)
    if perp == "PERP":
        return f"t{base}F0:{quote}F0"
    return f"t{base}{quote}" if len(base) == 3 and len(quote) == 3 else f"t{base}:{quote}"


_normalize = normalizer(normalize)


def _frames(event: str, symbols, channels) -> list[str]:
    if event == "unsubscribe":  # Bitfinex unsubscribes by chanId
        wanted = {native(s) for s in symbols}
        return [declare.dumps({"event": "unsubscribe", "chanId": cid})
                for cid, (name, sym) in _DEFAULT.channels.items()
                if name in channels and sym in wanted]
    return [declare.dumps({"event": "subscribe", "channel": c, "symbol": native(s)})
            for c in channels for s in symbols]


def _trade(item: list, sym: str, received_ts: int) -> Trade:
    ident, mts, signed, price = item[0], item[1], num(item[2]), num(item[3])
    if ident.__class__ is not int or mts.__class__ is not int or mts <= 0:
        raise FrameError(f"bad trade id/time {ident!r}/{mts!r}")
    amount = abs(signed)
    check_trade(price, amount)
    symbol = _normalize(sym)
    return Trade(
        NAME, symbol, sym, str(ident), price, amount,
        "buy" if signed > 0 else "sell", mts * 1000, received_ts, kind_of(symbol), amount, 1.0,
    )


class Session:
    """One connection's parser: its chanId -> (channel name, native symbol) map, filled
    from `subscribed` events."""

    def __init__(self) -> None:
        self.channels: dict[int, tuple[str, str]] = {}
        self.parse = safe_parse(NAME, self._parse)

    def _event(self, msg: dict) -> ParseResult:
        event = msg.get("event")
        if event == "subscribed":
            cid, channel, sym = msg["chanId"], msg["channel"], msg.get("symbol") or msg.get("key")
            if cid.__class__ is not int or channel.__class__ is not str or sym.__class__ is not str:
                raise FrameError("subscribed event without chanId/channel/symbol")
            if len(self.channels) >= _MAX_CHANNELS:
                self.channels.clear()
            self.channels[cid] = (channel, sym)
            return ParseResult(ignored=1)
        if event == "unsubscribed":
            self.channels.pop(msg.get("chanId"), None)  # type: ignore[arg-type]
            return ParseResult(ignored=1)
        if event == "error":
            raise FrameError(f"venue error {msg.get('code')}: {str(msg.get('msg'))[:200]}")
        if event.__class__ is str:
            return ParseResult(ignored=1)  # info, conf, pong
        raise FrameError("object without event")

    def _parse(self, frame: str | bytes, received_ts: int) -> ParseResult:
        msg = loads(frame)
        if msg.__class__ is dict:
            return self._event(msg)
        if msg.__class__ is not list or len(msg) < 2:
            raise FrameError("not an event object or a channel array")
        body = msg[1]
        if body == "hb":
            return ParseResult(ignored=1)
        known = self.channels.get(msg[0])  # type: ignore[arg-type]
        if known is None:
            raise FrameError(f"frame on unknown channel id {msg[0]!r} (no subscribed event)")
        channel, sym = known
        if sym[:1] == "f":
            return ParseResult(ignored=1)  # funding currencies (fUSD): loans, not market trades
        if channel == "trades":
            if body.__class__ is list:  # snapshot: the latest trades
                trades = [_trade(item, sym, received_ts) for item in body]
                return ParseResult(trades=trades, ignored=0 if trades else 1)
            if body in _TRADE_EVENTS:
                return ParseResult(trades=[_trade(msg[2], sym, received_ts)])
            raise FrameError(f"unknown trades message {body!r}")
        if channel == "ticker":
            if body.__class__ is not list:
                raise FrameError("ticker body is not an array")
            bid, bid_size, ask, ask_size = num(body[0]), num(body[1]), num(body[2]), num(body[3])
            check_quote(bid, bid_size, ask, ask_size)
            symbol = _normalize(sym)
            return ParseResult(quotes=[Quote(
                NAME, symbol, sym, bid, bid_size, ask, ask_size,
                received_ts, received_ts, kind_of(symbol),  # tickers carry no time
            )])
        return ParseResult(ignored=1)  # book, candles, status


_DEFAULT = Session()  # Venue.parse: one shared session (a single connection's frames)


VENUES = [
    declare.venue(
        NAME, "wss://api-pub.bitfinex.com/ws/2", ("api-pub.bitfinex.com", "api.bitfinex.com"),
        _DEFAULT.parse, safe=False, session=lambda: Session().parse, channels=_CHANNEL,
        frames=_frames, native=native, normalize=normalize)
    # the server sends `hb` every 15 s per channel; protocol pings cover the rest
]
