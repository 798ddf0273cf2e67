"""Data-quality run time: read a window of market.trades as Arrow and validate it with the
market_trades suite (Great Expectations), on a fresh chDB store with N generated trades.

    .venv/bin/python bench/bench_quality.py [--rows 1000000]

Prints one JSON object (import, read, validate and Data Docs seconds; wall clock, the
machine is shared), then a line of text.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from feedhouse.core.config import load_settings  # noqa: E402
from feedhouse.store.client import warehouse  # noqa: E402
from feedhouse.store.migrations import init_schema  # noqa: E402
from quality.window import Window  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=UTC)


def fill(settings, rows: int) -> None:
    """`rows` trades over one day on 4 venues, inserted as columns."""
    rng = np.random.default_rng(7)
    start_us = int(START.timestamp() * 1e6)
    ts = np.sort(rng.integers(start_us, start_us + 86_400_000_000, rows))
    venues = np.array(["binance", "coinbase", "kraken", "okx"])[rng.integers(0, 4, rows)]
    cols = [
        venues.tolist(),
        ["BTC-USDT"] * rows,
        ["BTCUSDT"] * rows,
        [str(i) for i in range(rows)],
        (60000 + rng.standard_normal(rows)).tolist(),
        rng.uniform(0.001, 1, rows).tolist(),
        np.array(["buy", "sell"])[rng.integers(0, 2, rows)].tolist(),
        [datetime.fromtimestamp(t / 1e6, UTC) for t in ts],
        [datetime.fromtimestamp((t + 40_000) / 1e6, UTC) for t in ts],
    ]
    names = ["venue", "symbol", "native_symbol", "trade_id", "price", "amount", "side",
             "exchange_ts", "received_ts"]  # fmt: skip
    with warehouse(settings) as client:
        client.insert("market.trades", list(zip(*cols, strict=True)), column_names=names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, home=tmp, reports_dir=f"{tmp}/reports")
        init_schema(settings)
        fill(settings, args.rows)
        t0 = time.perf_counter()
        import great_expectations  # noqa: F401 - the import cost, measured once

        import_s = time.perf_counter() - t0
        from quality.runner import run_quality

        window = Window.partition(START.date())
        t0 = time.perf_counter()
        run = run_quality(settings, window, ["market_trades"], docs=False, now=START)
        no_docs_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        docs_run = run_quality(settings, window, ["market_trades"], docs=True, now=START)
        docs_s = time.perf_counter() - t0
    result = {
        "bench": "quality_market_trades",
        "rows": run.suite("market_trades").rows,
        "columns": 11,
        "gx_import_s": round(import_s, 2),
        "read_arrow_s": round(run.timings["read_s"], 2),
        "validate_s": round(run.timings["validate_s"], 2),
        "run_total_s": round(no_docs_s, 2),
        "run_with_data_docs_s": round(docs_s, 2),
        "validate_with_data_docs_s": round(docs_run.timings["validate_s"], 2),
        "ok": run.ok,
    }
    print(json.dumps(result))
    print(
        f"{result['rows']:,} trades: read {result['read_arrow_s']} s, validate "
        f"{result['validate_s']} s ({result['validate_with_data_docs_s']} s with Data Docs), "
        f"GX import {result['gx_import_s']} s"
    )


if __name__ == "__main__":
    main()
