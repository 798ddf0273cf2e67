"""CPU cost of one insert into market.trades, by rows per insert: `python -m bench.insert_cost`.

Inserts batches of real-shaped trade rows (dataflows.sink.batches.make_batch, as the sink
builds them) with an insert token into a fresh embedded store, for each batch size, the
ways of `--ways` alternating round by round, each in a store of its own:
`client` (clickhouse-connect's `insert_arrow`: the sink before branch insert16), `store`
(`feedhouse.store.insert.insert_arrow`: the sink now), `view` (`client` on the schema of
migrations 001-007, whose materialized view fed candles from every insert). It reports
the process CPU time (user+sys: chDB's threads included) per insert and per row. A least-squares line
over the sizes gives the fixed cost per insert and the cost per row, which decide how
many rows an insert must carry for the store to cost <= 2 µs per trade
(docs/performance.md). CPU time, not wall time: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dataflows.sink.batches import TRADES, make_batch, rows_table
from feedhouse.core.config import load_settings
from feedhouse.core.paths import sql_dir
from feedhouse.store.client import warehouse
from feedhouse.store.insert import insert_arrow
from feedhouse.store.migrations import apply_migrations

T0 = 1_735_689_600_000_000  # 2025-01-01 in µs


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def batch(n: int, start: int):
    rows = [("binance", "BTC-USDT", "BTCUSDT", str(start + i), 42_000.0 + (i % 50), 0.01,
             "buy", T0 + (start + i) * 1000, T0 + (start + i) * 1000 + 500)
            for i in range(n)]
    data = rows_table(TRADES, rows, {"feed": "bench"})
    return make_batch(TRADES, "bench", f"bench:{start}:{n}", data)


def schema(folder: Path, with_view: bool) -> Path:
    """A migrations folder: all files, or those before 008 (trades feed the view)."""
    out = folder / ("old" if with_view else "new")
    out.mkdir(parents=True)
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        if not with_view or int(path.name[:3]) < 8:
            shutil.copy(path, out / path.name)
    return out


def insert(way: str, client, data, token: str) -> None:
    if way == "store":
        insert_arrow(client, TRADES, data, token)
    else:
        client.insert_arrow(TRADES, data, settings={"insert_deduplication_token": token})


def measure(way: str, client, sizes: list[int], inserts: int, start: int) -> dict[int, float]:
    out = {}
    for n in sizes:
        batches = [batch(n, start + k * n) for k in range(inserts)]
        start += inserts * n
        insert(way, client, batches[0].data, f"warm:{start}")  # not counted
        c0 = cpu()
        for b in batches[1:]:
            insert(way, client, b.data, b.token)
        out[n] = (cpu() - c0) / (inserts - 1) * 1e3  # ms per insert
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100,1000,5000,20000")
    parser.add_argument("--inserts", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ways", default="client,store", help="of client, store, view")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    ways = args.ways.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="feedhouse-insert-cost-"))
    results: dict[str, list[dict[int, float]]] = {way: [] for way in ways}
    load = [os.getloadavg()]
    try:
        for r in range(args.rounds):
            for way in (ways if r % 2 == 0 else ways[::-1]):
                home = tmp / f"{way}{r}"
                settings = load_settings(home=str(home))
                with warehouse(settings) as client:
                    apply_migrations(client, schema(home, way == "view"))
                    results[way].append(measure(way, client, sizes, args.inserts, 1_000_000))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load.append(os.getloadavg())
    report: dict = {"loadavg_start_end": [[round(x, 1) for x in a] for a in load]}
    for label, runs in results.items():
        ms = {n: float(np.median([run[n] for run in runs])) for n in sizes}
        slope, fixed = np.polyfit(sizes, [ms[n] for n in sizes], 1)
        report[label] = {
            "ms_per_insert": {n: round(v, 3) for n, v in ms.items()},
            "us_per_row": {n: round(v * 1e3 / n, 3) for n, v in ms.items()},
            "fit_fixed_ms": round(float(fixed), 3),
            "fit_us_per_row": round(float(slope) * 1e3, 3),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
