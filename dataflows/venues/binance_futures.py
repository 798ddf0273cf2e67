"""Binance futures: USD-M (`binance_futures`, fstream) and COIN-M (`binance_delivery`,
dstream), in Binance's stream format (binance.py) with their own symbol rules and sizes.

Symbols: USD-M `BTCUSDT` -> `BTC-USDT-PERP`, `BTCUSDT_230331` -> `BTC-USDT-230331`; COIN-M
(inverse) `BTCUSD_PERP` -> `BTC-USD-INV-PERP`, `BTCUSD_200626` -> `BTC-USD-INV-200626`.
USD-M sizes are in BASE; COIN-M sizes are contracts of
100 USD (BTC) or 10 USD (others), converted to BASE (`contractSize` of dapi exchangeInfo).
"""

from __future__ import annotations

from dataflows.venues import binance
from dataflows.venues import instruments as ins
from dataflows.venues.binance import native, normalize


def normalize_futures(native: str) -> str:
    """USD-M: 'BTCUSDT' (perpetual) -> 'BTC-USDT-PERP'; 'BTCUSDT_230331' -> 'BTC-USDT-230331'."""
    symbol = normalize(native)
    return symbol if "_" in native else f"{symbol}-PERP"


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


VENUES = [
    binance.venue("binance_futures", "wss://fstream.binance.com/stream", ("fstream.binance.com",),
                  native_futures, normalize_futures),
    binance.venue("binance_delivery", "wss://dstream.binance.com/stream", ("dstream.binance.com",),
                  native_delivery, normalize_delivery, catalog=ins.Catalog("binance_delivery", _coin_m, _coin_m_list,
                                      ("https://dapi.binance.com/dapi/v1/exchangeInfo",))),
]
