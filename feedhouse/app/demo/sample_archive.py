"""A small sample archive for trying the backfill: one day of Binance USD-M futures trades in
Binance's own daily dump format, made from a recorded session (package data).

The recorded session (tests/fixtures/exchanges/BINANCE_FUTURES.ws.1.0: 91 trades of
CTKUSDT and AKROUSDT over 29 s) is laid back to back LAPS times from 10:00 UTC on
SAMPLE_DAY, each lap's aggregate trade ids shifted past the previous lap's, and written
like data.binance.vision does:

    <home>/archive/data/futures/um/daily/aggTrades/CTKUSDT/CTKUSDT-aggTrades-2024-01-15.zip
      (one CSV with a header row: agg_trade_id,price,quantity,first_trade_id,
       last_trade_id,transact_time,is_buyer_maker; times in milliseconds)

so `archive_dir=<home>/archive` backfills the partition `2024-01-15|binance_futures`.
The files are rebuilt identically on every call (same rows, same bytes).
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

from dataflows.sources.capture import parse_capture
from feedhouse.app.drills.served import CAPTURES
from feedhouse.core.records import Trade

SAMPLE_DIR = "archive"  # under the feedhouse home
SAMPLE_CAPTURE = "BINANCE_FUTURES.ws.1.0"
SAMPLE_VENUE = "binance_futures"
SAMPLE_DAY = date(2024, 1, 15)
SAMPLE_PARTITION = f"{SAMPLE_DAY.isoformat()}|{SAMPLE_VENUE}"
LAPS = 20
FIRST_HOUR = 10
HEADER = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
          "transact_time", "is_buyer_maker"]
ZIP_TIME = (SAMPLE_DAY.year, SAMPLE_DAY.month, SAMPLE_DAY.day, 0, 0, 0)  # same bytes each time


def recorded_trades(source: Path = CAPTURES) -> list[Trade]:
    _, parsed, _ = parse_capture(source / SAMPLE_CAPTURE)
    return sorted(parsed.trades, key=lambda t: (t.exchange_ts, t.native_symbol, int(t.trade_id)))


def sample_rows(trades: list[Trade]) -> dict[str, list[list[str]]]:
    """{native symbol: CSV rows} for the whole sample day."""
    first, last = trades[0].exchange_ts, trades[-1].exchange_ts
    lap_us = (last - first) // 1_000_000 * 1_000_000 + 1_000_000  # whole seconds per lap
    start_us = int(datetime(SAMPLE_DAY.year, SAMPLE_DAY.month, SAMPLE_DAY.day, FIRST_HOUR,
                            tzinfo=UTC).timestamp()) * 1_000_000
    ids: dict[str, list[int]] = defaultdict(list)
    for t in trades:
        ids[t.native_symbol].append(int(t.trade_id))
    id_span = {s: max(v) - min(v) + 1 for s, v in ids.items()}
    rows: dict[str, list[list[str]]] = defaultdict(list)
    for lap in range(LAPS):
        shift_us = start_us + lap * lap_us - first
        for t in trades:
            agg_id = str(int(t.trade_id) + lap * id_span[t.native_symbol])
            rows[t.native_symbol].append([
                agg_id, repr(t.price), repr(t.amount), agg_id, agg_id,
                str((t.exchange_ts + shift_us) // 1000), "true" if t.side == "sell" else "false",
            ])
    return rows


def write_sample_archive(home: Path, source: Path = CAPTURES) -> Path:
    """(Re)write the sample archive under `<home>/archive`; returns that folder."""
    folder = Path(home) / SAMPLE_DIR
    if folder.exists():
        shutil.rmtree(folder)
    for symbol, rows in sample_rows(recorded_trades(source)).items():
        name = f"{symbol}-aggTrades-{SAMPLE_DAY.isoformat()}"
        target = folder / "data" / "futures" / "um" / "daily" / "aggTrades" / symbol / f"{name}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(zipfile.ZipInfo(f"{name}.csv", ZIP_TIME), text.getvalue())
    return folder
