"""Where a venue's `parse_many` spends its time, µs per trade by stage, over the normalize
corpus in 500-frame batches (as bench/normalize.py): `decode` = the typed msgspec decode
of a batch's frames, `build` = the venue's `build` over them, right after (warm, as in
`fast_many`), `dispatch` = the rest of `parse_many` (its total minus both). CPU time of
this process; per stage the least of `--passes` passes (the one least disturbed by the
machine's other load) over the corpus. A profile, not a figure
with a goal: compare trees side by side only.

    python -m bench.normalize_stages [--venues binance,okx] [--passes 7]
"""

from __future__ import annotations

import argparse
import time

from bench.common import NORMALIZE_CAPTURES, corpus
from bench.normalize import BATCH
from dataflows.venues import get_venue

VENUES = ("binance", "binance_futures", "okx", "coinbase")


def _pieces(parse_many) -> tuple:
    """The typed decoder and `build` a fast_many closes over (dataflows/venues/typed.py)."""
    cells = dict(zip(parse_many.__code__.co_freevars,
                     (c.cell_contents for c in parse_many.__closure__), strict=True))
    return cells["decode"], cells["build"]


def stages(venue_name: str, passes: int) -> dict[str, float]:
    messages = corpus(NORMALIZE_CAPTURES[venue_name], 50_000, trades_only=True)
    parse_many = get_venue(venue_name).parse_many
    decode, build = _pieces(parse_many)
    chunks = [messages[i : i + BATCH] for i in range(0, len(messages), BATCH)]
    trades = sum(len(parse_many(chunk).trades) for chunk in chunks)
    runs: list[tuple[float, float, float]] = []
    for _ in range(passes):
        decoding = building = 0.0
        for chunk in chunks:
            frames, received = [f for _, f in chunk], [r for r, _ in chunk]
            start = time.process_time()
            decoded = list(map(decode, frames))
            middle = time.process_time()
            build(decoded, received)
            decoding += middle - start
            building += time.process_time() - middle
        start = time.process_time()
        for chunk in chunks:
            parse_many(chunk)
        runs.append((time.process_time() - start, decoding, building))
    total, decoding, building = (min(r[i] for r in runs) * 1e6 / trades
                                 for i in range(3))
    return {"parse_many": total, "decode": decoding, "build": building,
            "dispatch": total - decoding - building}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venues", default=",".join(VENUES))
    ap.add_argument("--passes", type=int, default=7)
    args = ap.parse_args()
    for name in args.venues.split(","):
        got = stages(name, args.passes)
        print(f"{name:16s} " + "  ".join(f"{k} {v:.3f}" for k, v in got.items()) + " µs/trade")


if __name__ == "__main__":
    main()
