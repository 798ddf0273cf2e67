"""BitMEX's instrument list (GET /api/v1/instrument/active) as contract specs, by BitMEX's
rules ("How do I calculate the Contract Size ... through the /instrument endpoint",
support.bitmex.com; the quanto perpetuals guide, bitmex.com/app/quantoPerpetualsGuide):
- inverse (`isInverse`): multiplier / underlyingToSettleMultiplier QUOTE each (XBTUSD:
  -100000000 / -100000000 = 1 USD);
- linear, and any contract with `underlyingToPositionMultiplier` (quanto ones included):
  1 / underlyingToPositionMultiplier BASE each (XBTUSDT: 1 / 1000000 = 0.000001 XBT);
- quanto without it (settled in XBt): the contract is `multiplier` satoshi per QUOTE point,
  worth multiplier x the XBT price in BASE, so no fixed BASE size: listed with size 0 and
  `quanto` = multiplier / 1e8 XBT, which bitmex_units.py turns into a size at the XBT price.
Spot (`typ` IF...) and indices (`typ` MR...) are left to the symbol rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dataflows.venues import instruments as ins

URL = "https://www.bitmex.com/api/v1/instrument/active"


def listed(reply: list, normalize: Callable[[str], str]) -> list[tuple[str, ins.Spec]]:
    out = []
    for item in reply:
        try:
            out.extend(_spec(item, normalize))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue  # one odd entry (new product type, missing field) costs only itself
    return out


def _spec(item: dict, normalize: Callable[[str], str]) -> list[tuple[str, ins.Spec]]:
    out: list[tuple[str, ins.Spec]] = []
    if item["typ"].startswith("FF"):  # FFWCSX/FFWCSF perpetuals, FFCCSX futures
        native, per_position = item["symbol"], item.get("underlyingToPositionMultiplier")
        symbol = normalize(native)
        if item["isInverse"]:
            size = abs(float(item["multiplier"]) / float(item["underlyingToSettleMultiplier"]))
            out.append((native, ins.spec_of(symbol, size, True)))
        elif per_position:
            out.append((native, ins.spec_of(symbol, round(1.0 / float(per_position), 12))))
        elif item["isQuanto"]:  # valued in XBT: no BASE constant; the XBT multiplier instead
            xbt = float(item["multiplier"]) / 1e8 if item["settlCurrency"].upper() == "XBT" else 0.0
            out.append((native, replace(ins.spec_of(symbol, 0.0), quanto=abs(xbt))))
    return out
