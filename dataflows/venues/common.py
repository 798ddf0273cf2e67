"""Small pieces every venue adapter shares: decoding, symbol splitting, stable ids."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import orjson

from feedhouse.core.records import MARKET_EPOCH_US, Invalid, ParseResult, us_from_iso

# Quote assets, longest first so "USDT" wins over "USD" when splitting "BTCUSDT".
QUOTE_ASSETS = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "UST", "PAX",
    "EUR", "GBP", "USD", "JPY", "AUD", "CAD", "CHF", "TRY", "BRL", "RUB", "UAH", "NGN",
    "ZAR", "IDRT", "BIDR", "BVND", "PLN", "RON", "ARS", "MXN", "KRW",
    "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL", "XBT",
)
_QUOTES_BY_LEN = tuple(sorted(QUOTE_ASSETS, key=len, reverse=True))


def loads(frame: str | bytes):
    """Decode a JSON frame (orjson accepts str and bytes)."""
    return orjson.loads(frame)


def split_concatenated(native: str) -> str:
    """'BTCUSDT' -> 'BTC-USDT' using known quote assets; unknown stays as given, upper."""
    upper = native.upper()
    for quote in _QUOTES_BY_LEN:
        if upper.endswith(quote) and len(upper) > len(quote):
            return f"{upper[: -len(quote)]}-{quote}"
    return upper


def join_separated(native: str, sep: str) -> str:
    """'BTC/USD' or 'btc_usdt' -> 'BTC-USD' / 'BTC-USDT'."""
    return native.upper().replace(sep, "-")


def stable_trade_id(*fields: object) -> str:
    """A deterministic id from a trade's own fields, for venues that send none."""
    text = "|".join(str(f) for f in fields)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def invalid(frame: str | bytes, reason: str) -> Invalid:
    raw = frame if isinstance(frame, str) else frame.decode("utf-8", errors="backslashreplace")
    return Invalid(raw[:4096], reason)


# --- added for the venue adapters (venues A); shared, additive ---------------------------

INF = float("inf")


class FrameError(ValueError):
    """A frame that cannot be turned into records; its message becomes the Invalid reason."""


def num(value: object) -> float:
    """A venue's decimal string or JSON number as float (JSON true/false are not numbers)."""
    if value.__class__ is bool:
        raise FrameError(f"boolean where a number belongs: {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_trade(price: float, amount: float) -> None:
    """Price and amount must be finite and > 0 (NaN fails every comparison)."""
    if not (0.0 < price < INF and 0.0 < amount < INF):
        raise FrameError(f"non-positive or non-finite price/amount: {price!r}/{amount!r}")


def check_quote(bid: float, bid_size: float, ask: float, ask_size: float) -> None:
    """Quote prices and sizes must be finite and >= 0 (0 means 'side empty / not given')."""
    if not (
        0.0 <= bid < INF and 0.0 <= ask < INF and 0.0 <= bid_size < INF and 0.0 <= ask_size < INF
    ):
        raise FrameError(f"negative or non-finite quote: {bid!r}x{bid_size!r} {ask!r}x{ask_size!r}")


def safe_parse(venue: str, fn: Callable[[str | bytes, int], ParseResult]):
    """Wrap a frame parser so it never raises: any error makes the whole frame Invalid.

    A frame is all-or-nothing, so its raw text in the dead letter accounts for every record
    it held (replaying it can never duplicate trades already stored).
    """

    def parse(frame: str | bytes, received_ts: int) -> ParseResult:
        try:
            result = fn(frame, received_ts)
            # the contract's cheap checks, so one bad record never fails a whole batch
            # (positional access: NamedTuple attributes cost a descriptor call each)
            for trade in result.trades:  # (a time past MAX_TS_US would not fit the int64 columns)
                if not MARKET_EPOCH_US <= trade[7] < MAX_TS_US or not 0 < len(trade[3]) <= 128:
                    raise FrameError(f"bad trade id/time {trade[3][:40]!r}/{trade[7]!r}")
            for quote in result.quotes:
                if quote[7] < MARKET_EPOCH_US:
                    raise FrameError(f"bad quote time {quote[7]!r}")
            return result
        except orjson.JSONDecodeError:
            return ParseResult(invalid=[invalid(frame, f"{venue}: not JSON")])
        except FrameError as exc:
            return ParseResult(invalid=[invalid(frame, f"{venue}: {str(exc)[:200]}")])
        except KeyError as exc:
            reason = f"{venue}: missing field {str(exc)[:80]}"
            return ParseResult(invalid=[invalid(frame, reason)])
        except IndexError:
            return ParseResult(invalid=[invalid(frame, f"{venue}: too few elements")])
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            reason = f"{venue}: bad value ({exc.__class__.__name__}: {str(exc)[:120]})"
            return ParseResult(invalid=[invalid(frame, reason)])
        except Exception as exc:  # noqa: BLE001 - parse must never stop a feed
            reason = f"{venue}: unexpected {exc.__class__.__name__}: {str(exc)[:120]}"
            return ParseResult(invalid=[invalid(frame, reason)])

    parse.__name__ = f"parse_{venue}"
    parse.__qualname__ = parse.__name__
    return parse


def memo(fn: Callable[[str], str], limit: int = 65536) -> Callable[[str], str]:
    """Cache a symbol mapping (the hot path sees the same few symbols over and over)."""
    cache: dict[str, str] = {}

    def mapped(symbol: str) -> str:
        try:
            return cache[symbol]
        except KeyError:
            value = fn(symbol)
            if len(cache) < limit:
                cache[symbol] = value
            return value

    mapped.__wrapped__ = fn  # type: ignore[attr-defined]
    return mapped


_SECOND_US: dict[str, int] = {}
SECONDS_CACHED = 4096  # about an hour of a live feed's seconds (was 100k: ~14 MB)
_DAY_US: dict[str, int] = {}  # 'YYYY-MM-DD' -> µs at its midnight (UTC)
_MINUTE_US: dict[str, int] = {}  # 'YYYY-MM-DDTHH:MM' -> µs at its start, from _second_us


def _second_us(head: str) -> int:
    """'YYYY-MM-DDTHH:MM:SS' (UTC) -> µs: its minute's start (known once a second of it was
    read) or its day's midnight (parsed once per day) plus the clock; any other shape or an
    out-of-range clock is records.us_from_iso's to judge."""
    minute, sec = _MINUTE_US.get(head[:16]), head[17:19]
    if minute is not None and head[16] == ":" and sec.isascii() and sec.isdigit() and sec < "60":
        return minute + int(sec) * 1_000_000
    clock = head[11:13] + head[14:16] + sec
    if head[13] != ":" or head[16] != ":" or not (clock.isascii() and clock.isdigit()) or (
            clock[:2] > "23" or clock[2] > "5" or clock[4] > "5"):
        return us_from_iso(head + "Z")
    seconds_us = (int(clock[:2]) * 3600 + int(clock[2:4]) * 60 + int(clock[4:])) * 1_000_000
    day = _DAY_US.get(head[:10])
    if day is None:
        day = us_from_iso(head + "Z") - seconds_us
        if len(_DAY_US) >= 64:
            _DAY_US.clear()
        _DAY_US[head[:10]] = day
    if len(_MINUTE_US) >= SECONDS_CACHED:
        _MINUTE_US.clear()
    _MINUTE_US[head[:16]] = day + seconds_us - int(sec) * 1_000_000
    return day + seconds_us


def us_from_iso_z(text: str) -> int:
    """Fast path for 'YYYY-MM-DDTHH:MM:SS[.fraction]Z' (Coinbase, Kraken v2, Bybit legacy).

    The whole-second part is computed once (_second_us) and cached, since a feed sees
    each second many times; anything else falls back to records.us_from_iso.
    """
    size = len(text)
    if size >= 20 and text[-1] == "Z":
        head = text[:19]
        base = _SECOND_US.get(head)
        if base is None:
            if head[10] != "T" or not head[:4].isdigit():
                return us_from_iso(text)
            base = _second_us(head)
            if len(_SECOND_US) >= SECONDS_CACHED:
                _SECOND_US.clear()
            _SECOND_US[head] = base
        if size == 20:
            return base
        frac = text[20:-1]
        if text[19] == "." and frac.isdigit() and frac.isascii():
            return base + int(frac if len(frac) == 6 else (frac + "000000")[:6])
    return us_from_iso(text)


# --- added for the venue adapters (venues B); shared, additive ---------------------------


def quote_table(*quotes: str) -> tuple[str, ...]:
    """A venue's own quote assets, longest first (for split_with).

    Venues with a short quote list should not use the shared QUOTE_ASSETS: its TUSD splits
    Gemini's GRTUSD as GR-TUSD and BitMEX's XBTUSD as XB-TUSD.
    """
    return tuple(sorted(set(quotes), key=len, reverse=True))


def split_with(native: str, quotes: tuple[str, ...]) -> str:
    """split_concatenated with a venue's quote table (e.g. Gemini's 'ZECLTC' -> 'ZEC-LTC').

    A quote missing from the table is guessed as the last three letters (most quote assets
    have three), so a new listing still reads BASE-QUOTE instead of breaking the contract.
    """
    upper = native.upper()
    for quote in quotes:
        if upper.endswith(quote) and len(upper) > len(quote):
            return f"{upper[: -len(quote)]}-{quote}"
    return f"{upper[:-3]}-{upper[-3:]}" if len(upper) > 3 else upper


MAX_TS_US = 10**16  # year 2286: later stamps are corrupt, and beyond DateTime64's range


def check_ts(us: int) -> int:
    """An exchange time in µs must lie after MARKET_EPOCH_US (2009-01-03: no crypto trade
    is older, an earlier time is a corrupt field) and before MAX_TS_US."""
    if not MARKET_EPOCH_US <= us < MAX_TS_US:
        raise FrameError(f"timestamp out of range: {us!r} µs")
    return us


def ms_us(value: object) -> int:
    """A venue's epoch-milliseconds (int, float or digit string) as µs, range-checked."""
    if value.__class__ is int:
        return check_ts(value * 1000)  # type: ignore[operator]
    if value.__class__ is str:
        return check_ts(int(value) * 1000)  # type: ignore[arg-type]
    if value.__class__ is float:
        return check_ts(int(round(value * 1000)))  # type: ignore[operator]
    raise FrameError(f"bad timestamp: {value!r}")


def trades_or_ignored(trades: list) -> ParseResult:
    """A frame whose trade list is empty still counts once: as ignored."""
    return ParseResult(trades=trades) if trades else ParseResult(ignored=1)


def quotes_or_ignored(quotes: list) -> ParseResult:
    return ParseResult(quotes=quotes) if quotes else ParseResult(ignored=1)


def text_id(value: object) -> str:
    """An exchange trade id (string or integer) as text; anything else is a broken frame."""
    cls = value.__class__
    if cls is str:
        if not 0 < len(value) <= 128:  # type: ignore[arg-type]
            raise FrameError(f"bad trade id length: {value!r}"[:160])
        return value  # type: ignore[return-value]
    if cls is int:
        return str(value)
    if cls is float and value.is_integer():  # type: ignore[attr-defined]
        return str(int(value))  # type: ignore[arg-type]
    raise FrameError(f"bad trade id: {value!r}")


def us_from_decimal_s(text: str) -> int:
    """'1618678142.557535' -> µs, exactly (float seconds lose the last microsecond)."""
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise FrameError(f"bad epoch seconds {text!r}")
    # range-checked like ms_us: a fuzzed '9999…9' must not reach int64 columns
    return check_ts(int(whole) * 1_000_000 + (int((frac + "000000")[:6]) if frac else 0))


_SYMBOL = re.compile(r"[A-Z0-9.]+-[A-Z0-9.]+(-[A-Z0-9.]+)*")


def normalizer(fn: Callable[[str], str], limit: int = 65536) -> Callable[[str], str]:
    """`memo` plus the contract's symbol checks, run once per distinct native symbol.

    The native symbol must be a 1..128 character string and its normalized form must be
    BASE-QUOTE(-MORE) in upper case; otherwise FrameError (the frame becomes Invalid).
    """
    cache: dict[str, str] = {}

    def mapped(native: str) -> str:
        try:
            return cache[native]
        except KeyError:
            pass
        if native.__class__ is not str or not 0 < len(native) <= 128:
            raise FrameError(f"bad symbol {str(native)[:40]!r}")
        value = fn(native)
        if _SYMBOL.fullmatch(value) is None or len(value) > 128:
            raise FrameError(f"symbol {native[:40]!r} does not normalize to BASE-QUOTE")
        if len(cache) < limit:
            cache[native] = value
        return value

    return mapped


# --- a trade or quote from a venue's fields (declarative venues, issue 15) ----------------
# Each does what the venues wrote inline (num, num, check_trade...), in the same order, so
# the Invalid reasons stay; one call instead of three per record.


def json_object(frame: str | bytes) -> dict:
    """A frame that must be a JSON object."""
    msg = orjson.loads(frame)
    if msg.__class__ is not dict:
        raise FrameError("not a JSON object")
    return msg


def price_size(entry, price_key, size_key) -> tuple[float, float]:
    """num(entry[price_key]), num(entry[size_key]), check_trade: a trade's price and size."""
    price = entry[price_key]
    if price.__class__ is bool:
        raise FrameError(f"boolean where a number belongs: {price!r}")
    price = float(price)
    size = entry[size_key]
    if size.__class__ is bool:
        raise FrameError(f"boolean where a number belongs: {size!r}")
    size = float(size)
    if not (0.0 < price < INF and 0.0 < size < INF):
        raise FrameError(f"non-positive or non-finite price/amount: {price!r}/{size!r}")
    return price, size


def side_of(sides: dict, value: object, what: str = "side") -> str:
    """A venue's side word as buy/sell (`sides` maps them); anything else is invalid."""
    side = sides.get(value)
    if side is None:
        raise FrameError(f"bad {what} {value!r}")
    return side


def _boolean(value: object) -> float:
    raise FrameError(f"boolean where a number belongs: {value!r}")


def book_top(entry, bid_key, bid_size_key, ask_key, ask_size_key, null_empty: bool = False):
    """(bid, bid_size, ask, ask_size) as num() reads them, check_quote'd; with `null_empty`
    a null field is 0 (that side of the book is empty). Unrolled: it runs once per quote."""
    v = entry[bid_key]
    bid = 0.0 if null_empty and v is None else _boolean(v) if v.__class__ is bool else float(v)
    v = entry[bid_size_key]
    bid_size = 0.0 if null_empty and v is None else _boolean(v) if v.__class__ is bool else float(v)
    v = entry[ask_key]
    ask = 0.0 if null_empty and v is None else _boolean(v) if v.__class__ is bool else float(v)
    v = entry[ask_size_key]
    ask_size = 0.0 if null_empty and v is None else _boolean(v) if v.__class__ is bool else float(v)
    check_quote(bid, bid_size, ask, ask_size)
    return bid, bid_size, ask, ask_size


def int_id(value: object) -> str:
    """An exchange trade id that must be a JSON integer, as text."""
    if value.__class__ is not int:
        raise FrameError(f"trade id is not an integer: {value!r}")
    return str(value)


def name_field(entry, key, what: str = "symbol") -> str:
    """A non-empty string field naming an instrument (its absence: a missing field)."""
    value = entry[key]
    if value.__class__ is not str or not value:
        raise FrameError(f"bad {what} {value!r}")
    return value
