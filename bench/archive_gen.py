"""Realistic archive files for the backfill benchmark and tests, made from a fixed seed.

There is no internet here, so instead of committing a day of Binance or Tardis.dev data,
`binance_day` and `tardis_day` write files in exactly those formats:

* Binance public-data daily dumps (`BTCUSDT-trades-2025-11-20.zip`: a zipped CSV, no header
  by default, `id,price,qty,quote_qty,time,is_buyer_maker,is_best_match`; `aggTrades`:
  `agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,
  is_best_match`), times in µs (spot since 2025) or ms;
* Tardis.dev normalized trades (`<exchange>_trades_<YYYY-MM-DD>_<SYMBOL>.csv.gz`:
  `exchange,symbol,timestamp,local_timestamp,id,side,price,amount`, µs, empty id where
  the venue has none).

Prices follow a random walk with the instrument's tick, sizes a log-normal with lot
rounding, times are sorted over the day with bursts, ids increase. Each function returns
(rows, sum(price * amount)) as written (read back from the text, so what a test compares
with is what the file says).

    python -m bench.archive_gen DIR [--rows N] [--day 2025-11-20]
"""

from __future__ import annotations

import argparse
import gzip
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

DAY_US = 86_400_000_000
BINANCE_TRADES = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"]
BINANCE_AGG = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
               "transact_time", "is_buyer_maker", "is_best_match"]
TARDIS = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"]


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int
    notional: float  # sum(price * amount) of the rows as written


def _day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def _walk(rng: np.random.Generator, n: int, start: float, tick: float, lot: float):
    """(prices, sizes, sorted µs offsets within the day, taker-sold flags)."""
    steps = rng.choice([-1, 0, 0, 0, 1], size=n).cumsum()
    prices = np.round(start + steps * tick, 8)
    prices = np.where(prices <= tick, tick, prices)
    sizes = np.round(np.maximum(rng.lognormal(-4.0, 1.4, n), lot) / lot) * lot
    sizes = np.round(sizes, 8)
    # bursts: exponential gaps with a heavier tail, scaled into the day
    gaps = rng.exponential(1.0, n) * rng.choice([0.05, 1.0, 4.0], size=n, p=[0.5, 0.4, 0.1])
    offsets = np.cumsum(gaps)
    offsets = (offsets / offsets[-1] * (DAY_US - 1_000)).astype(np.int64)
    sold = rng.random(n) < 0.5
    return prices, sizes, offsets, sold


def _notional(data: bytes, price_col: int, amount_col: int, header: bool) -> tuple[int, float]:
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True, skip_rows=1 if header else 0),
        convert_options=pacsv.ConvertOptions(
            include_columns=[f"f{price_col}", f"f{amount_col}"],
            column_types={f"f{price_col}": pa.float64(), f"f{amount_col}": pa.float64()},
        ),
    )
    value = pc.sum(pc.multiply(table.column(0), table.column(1))).as_py() or 0.0
    return table.num_rows, float(value)


def _csv_bytes(columns: dict[str, np.ndarray | pa.Array], header: bool) -> bytes:
    sink = io.BytesIO()
    if header:  # pyarrow quotes header names; the archives do not
        sink.write((",".join(columns) + "\n").encode())
    pacsv.write_csv(pa.table(columns), sink,
                    write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return sink.getvalue()


def binance_day(folder: Path, day: date, rows: int, *, symbol: str = "BTCUSDT",
                kind: str = "trades", header: bool = False, unit: str = "us", seed: int = 7,
                zipped: bool = True, first_id: int = 5_000_000_000, start_price: float = 91_000.0,
                ) -> Written:
    """One Binance daily dump of `rows` trades (see module doc)."""
    rng = np.random.default_rng(seed)
    prices, sizes, offsets, sold = _walk(rng, rows, start_price, 0.01, 0.00001)
    times = _day_start_us(day) + offsets
    if unit == "ms":
        times = times // 1000
    ids = np.arange(first_id, first_id + rows, dtype=np.int64)
    maker = np.where(sold, "True", "False")
    if kind == "trades":
        cols = dict(zip(BINANCE_TRADES, [ids, prices, sizes, np.round(prices * sizes, 8), times,
                                         maker, np.full(rows, "True")], strict=True))
        price_col, amount_col = 1, 2
    else:
        firsts = ids * 3
        cols = dict(zip(BINANCE_AGG, [ids, prices, sizes, firsts, firsts + 2, times, maker,
                                      np.full(rows, "True")], strict=True))
        price_col, amount_col = 1, 2
    data = _csv_bytes(cols, header)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{symbol}-{kind}-{day.isoformat()}"
    if zipped:
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr(f"{name}.csv", data)
    else:
        path = folder / f"{name}.csv"
        path.write_bytes(data)
    n, notional = _notional(data, price_col, amount_col, header)
    return Written(path, n, notional)


def tardis_day(folder: Path, exchange: str, symbol: str, day: date, rows: int, *,
               seed: int = 11, with_ids: bool = True, first_id: int = 100_000_000,
               start_price: float = 3_000.0) -> Written:
    """One Tardis.dev normalized trades file (see module doc); `with_ids=False` leaves the
    id empty, as Tardis does for venues without trade ids."""
    rng = np.random.default_rng(seed)
    prices, sizes, offsets, sold = _walk(rng, rows, start_price, 0.01, 0.0001)
    times = _day_start_us(day) + offsets
    local = times + rng.integers(200, 40_000, rows)
    ids = (np.arange(first_id, first_id + rows).astype(str) if with_ids
           else np.full(rows, "", dtype=object))
    cols = dict(zip(TARDIS, [np.full(rows, exchange), np.full(rows, symbol), times, local, ids,
                             np.where(sold, "sell", "buy"), prices, sizes], strict=True))
    data = _csv_bytes(cols, True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{exchange}_trades_{day.isoformat()}_{symbol.replace('/', '-')}.csv.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1))
    n, notional = _notional(data, 6, 7, True)
    return Written(path, n, notional)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.archive_gen")
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--day", default="2025-11-20")
    args = ap.parse_args(argv)
    day = date.fromisoformat(args.day)
    made = [binance_day(args.folder / "spot", day, args.rows),
            tardis_day(args.folder / "tardis", "coinbase", "BTC-USD", day, args.rows // 10),
            tardis_day(args.folder / "tardis", "kraken", "XBT/USD", day, args.rows // 10,
                       with_ids=False, seed=12)]
    for w in made:
        print(f"{w.path}\t{w.rows}\t{w.notional:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
