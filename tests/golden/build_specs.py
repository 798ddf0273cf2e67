"""Build the instrument specs shipped with feedhouse (dataflows/venues/specs/<venue>.json)
from the recorded or documented instrument-list replies under feedhouse/app/sessions/rest/.

    .venv/bin/python tests/golden/build_specs.py

The live catalogs use them when no fetched or cached list has an instrument, and the
post-migration step (dataflows/venues/stored.py) converts stored contract amounts with
them. tests/ingest/test_venues_instruments.py checks the files equal what this builds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dataflows.venues import binance_futures, bitmex, bitmex_list, okx  # noqa: E402
from dataflows.venues import instruments as ins  # noqa: E402

REST = ROOT / "feedhouse" / "app" / "sessions" / "rest"
SPECS = ROOT / "dataflows" / "venues" / "specs"
# venue -> (recorded replies, the venue's own instrument-list reader)
SOURCES = {
    "okx": ("OKX.0", okx._listed),
    "binance_delivery": ("BINANCE_DELIVERY.docs", binance_futures._coin_m_list),
    "bitmex": ("BITMEX.docs", lambda reply: bitmex_list.listed(reply, bitmex.normalize)),
}


def build(venue: str) -> dict:
    name, lister = SOURCES[venue]
    specs: dict[str, list] = {}
    for reply in ins.read_rest(REST / name).values():  # the last recording of a URL wins
        for native, spec in lister(reply):
            row = [spec.symbol, spec.contract_size, spec.inverse]
            specs[native] = [*row, spec.quanto] if spec.quanto else row  # BitMEX quanto: XBT/point
    return {"source": f"feedhouse/app/sessions/rest/{name}", "specs": dict(sorted(specs.items()))}


def main() -> None:
    SPECS.mkdir(exist_ok=True)
    for venue in SOURCES:
        data = build(venue)
        (SPECS / f"{venue}.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        print(venue, len(data["specs"]))


if __name__ == "__main__":
    main()
