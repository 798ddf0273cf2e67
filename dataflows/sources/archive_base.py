"""Archive sizes in BASE units, with the live adapters' instrument specs.

Archives give trade sizes as the venue does: contracts for Binance COIN-M dumps and for
Tardis.dev files of contract venues (Deribit and BitMEX USD, OKX and Bybit contracts).
`to_base` converts a file's `amount` column with the spec the live adapter uses for each
native symbol (its catalog: fetched, cached or shipped instrument lists, else the venue's
rule), keeping the archive's size as `native_amount` and the size used as
`contract_size`, exactly as `instruments.Spec.base` does for live trades: per distinct
symbol one lookup, per row numpy (inverse amounts under 1e-4 BASE get Spec.base's 6
significant digits rather than 8 decimals). An
instrument whose size no list knows keeps its contracts with contract_size 0, as the
post-migration step (dataflows/venues/stored.py) does.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataflows.venues import ALL, VENUES
from dataflows.venues.base import Venue
from dataflows.venues.common import FrameError
from dataflows.venues.instruments import Spec, base_of_quote

_BYBIT_INVERSE = re.compile(r"^[A-Z0-9]+USD([FGHJKMNQUVXZ]\d\d)?$")  # BTCUSD, BTCUSDH23


def adapter_for(venue: str, native: str, flavour: str = "") -> Venue:
    """The live adapter of an archive's symbol: Bybit's market is its endpoint, so Tardis
    `bybit` files (derivatives) are inverse for USD names and linear otherwise, and
    `bybit-spot` files (flavour `spot`) are spot."""
    if venue == "bybit":
        market = flavour or ("inverse" if _BYBIT_INVERSE.match(native) else "")
        return ALL[f"bybit@{market}"] if market else VENUES["bybit"]
    return VENUES[venue]


_UNKNOWN = Spec("", contract_size=0.0)


def live_spec(venue: str, native: str, flavour: str = "") -> Spec | None:
    """The live adapter's spec of `native`; None when the venue has no catalog (sizes
    in BASE), `_UNKNOWN` when its catalog refuses to guess the contract's size."""
    catalog = getattr(adapter_for(venue, native, flavour), "catalog", None)
    if catalog is None:
        return None
    try:
        return catalog(native)
    except (FrameError, ValueError):
        return _UNKNOWN


def to_base(venue: str, native: pa.Array | pa.ChunkedArray, price, amount,
            flavour: str = "") -> tuple[pa.Array, pa.Array, pa.Array]:
    """(amount in BASE, native_amount, contract_size) of an archive's columns."""
    distinct = pc.unique(native)
    specs = [live_spec(venue, n, flavour) for n in distinct.to_pylist()]
    n = len(amount)
    if all(s is None or (s.contract_size == 1.0 and not s.inverse) for s in specs):
        return amount, amount, pa.array(np.ones(n))
    index = pc.index_in(native, value_set=distinct)
    size = pc.take(pa.array([1.0 if s is None else s.contract_size for s in specs]), index)
    inverse = pc.take(pa.array([s is not None and s.inverse for s in specs]), index)
    # numpy's round (scale, rint, unscale) is Python's round(x, n) for these magnitudes;
    # Arrow's round(x, 12) is not (it leaves ~1e-14 errors)
    raw, sizes, prices = _numpy(amount), _numpy(size), _numpy(price)
    inv = _numpy(inverse)
    value = raw * sizes
    with np.errstate(divide="ignore", invalid="ignore"):  # bad prices: refused later
        exact = value / prices  # inverse: QUOTE value / price
    in_base = np.where(inv, np.round(exact, 8), np.where(sizes == 0.0, raw, np.round(value, 12)))
    small = inv & (exact < 1e-4) & (exact > 0)
    if small.any():  # Spec.base's 6 significant digits: rint(x * 10^k) / 10^k, k per row
        rows = np.flatnonzero(small)
        tiny = exact[rows]
        scale = 10.0 ** (5 - np.floor(np.log10(tiny)))
        scaled = tiny * scale
        in_base[rows] = np.rint(scaled) / scale
        # a product that rounded onto .5 may hide which side the exact value is on:
        # those (rare) rows take Spec.base itself
        for i in rows[scaled - np.floor(scaled) == 0.5]:
            in_base[i] = base_of_quote(float(value[i]), float(prices[i]))
    return pa.array(in_base), amount, size


def _numpy(values) -> np.ndarray:
    return values.to_numpy() if isinstance(values, pa.ChunkedArray) else values.to_numpy(zero_copy_only=False)
