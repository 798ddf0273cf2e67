"""Small pieces every venue adapter shares: decoding, symbol splitting, stable ids."""

from __future__ import annotations

import hashlib

import orjson

from feedhouse.records import Invalid

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
