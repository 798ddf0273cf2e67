"""Parse throughput of venue adapters B (gemini, gateio, bitmex, deribit, huobi, bitget).

    .venv/bin/python bench/bench_venues_b.py [--seconds 1.0]

Same method as bench_venues_a.py (whose timing loop it reuses): per capture, `all` = every
received frame (books, tickers, heartbeats included), `trades` = only the frames carrying
trades (the figure comparable to cryptofeed's normalized trades/s), each looped for
--seconds of this process's CPU time. Deribit's real capture holds no trades, so its
documentation-built capture stands in (4 trades, 1 quote: a small, repetitive corpus).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_venues_a import frames_of, run  # noqa: E402
from dataflows.venues import get_venue  # noqa: E402

CASES = [
    ("gemini", "GEMINI.ws.1.0"),
    ("gateio", "GATEIO.ws.1.0"),
    ("bitmex", "BITMEX.ws.1.0"),
    ("deribit", "docs/DERIBIT_TRADES.ws.docs"),
    ("huobi", "HUOBI.ws.44.0"),
    ("bitget", "BITGET.ws.1.0"),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    rows = []
    for venue_name, capture in CASES:
        venue = get_venue(venue_name)
        frames = frames_of(capture)
        trade_frames = [(ts, f) for ts, f in frames if venue.parse(f, ts).trades]
        for corpus, subset in (("all", frames), ("trades", trade_frames)):
            row = {"venue": venue_name, "capture": capture, "corpus": corpus,
                   "trades_per_frame": round(
                       sum(len(venue.parse(f, ts).trades) for ts, f in subset) / len(subset), 2)}
            row.update(run(venue.parse, subset, args.seconds))
            rows.append(row)
            print(orjson.dumps(row).decode(), flush=True)
    print(f"\n{'venue':<9} {'corpus':<7} {'trades/frame':>12} {'frames/s':>10} {'trades/s':>10}"
          f" {'quotes/s':>10}")
    for row in rows:
        print(
            f"{row['venue']:<9} {row['corpus']:<7} {row['trades_per_frame']:>12} "
            f"{row['frames_per_s']:>10,} {row['trades_per_s']:>10,} {row['quotes_per_s']:>10,}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
