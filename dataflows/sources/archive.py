"""Archive files for backfills: Binance's public daily trade dumps and recorded captures.

Binance publishes (data.binance.vision) one file per symbol and day, zipped CSV:

    BTCUSDT-trades-2024-01-15.csv     id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]
    BTCUSDT-aggTrades-2024-01-15.csv  agg_trade_id,price,quantity,first_trade_id,
                                      last_trade_id,transact_time,is_buyer_maker[,is_best_match]

Older files have no header row, newer ones do; spot timestamps switched from milliseconds
to microseconds in 2025 — both are detected (header: first field not a number; unit: by
magnitude). Files under a `futures` folder are USD-M futures (`binance_futures`), under
`futures/cm` COIN-M (`binance_delivery`); anything else is spot (`binance`).

Trade ids follow the live adapter (dataflows/venues/binance.py): aggTrades rows carry the
aggregate id (what the default `aggTrade` stream stores), trades rows the trade id (what
the raw `trade` stream stores). When both dumps exist for a symbol and day, aggTrades wins,
so a day is never loaded twice under two id spaces.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from dataflows.venues import instruments
from feedhouse.core.errors import InputError
from feedhouse.core.records import Trade

DUMP_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>trades|aggTrades)-(?P<day>\d{4}-\d{2}-\d{2})\.(?:csv|zip)$"
)
CAPTURE_NAME = re.compile(r"\.ws(?:\.|$)")
CAPTURE_HOUR = re.compile(r"\.(\d{8})T(\d{2})\.ws$")  # CaptureWriter: <feed>.<YYYYMMDDTHH>.ws
# Column positions per dump kind: (id, price, amount, time, is_buyer_maker)
_COLUMNS = {"trades": (0, 1, 2, 4, 5), "aggTrades": (0, 1, 2, 5, 6)}
_PREFERENCE = {"aggTrades": 0, "trades": 1}
US_THRESHOLD = 10**14  # ms stamps are ~1.7e12 today, µs ~1.7e15: anything above is µs


@dataclass(frozen=True)
class DumpFile:
    path: Path
    venue: str
    native_symbol: str
    kind: str  # trades | aggTrades
    day: date


def dump_venue(path: Path) -> str:
    """Venue of a dump by its place in Binance's layout (data/spot|futures/um|futures/cm/...)."""
    parts = [p.lower() for p in path.parent.parts]
    if "futures" not in parts:
        return "binance"
    return "binance_delivery" if "cm" in parts else "binance_futures"


def find_dumps(folder: Path, day: date, venue: str) -> list[DumpFile]:
    """The Binance dumps of `venue` for `day` under `folder` (one per symbol, aggTrades first)."""
    chosen: dict[str, DumpFile] = {}
    for path in sorted(Path(folder).rglob(f"*-{day.isoformat()}.*")):
        match = DUMP_NAME.match(path.name)
        if not match or dump_venue(path) != venue:
            continue
        found = DumpFile(path, venue, match["symbol"], match["kind"], day)
        held = chosen.get(found.native_symbol)
        if held is None or _PREFERENCE[found.kind] < _PREFERENCE[held.kind]:
            chosen[found.native_symbol] = found
    return [chosen[s] for s in sorted(chosen)]


def find_captures(folder: Path, day: date) -> list[Path]:
    """Capture files that may hold events of `day`: CaptureWriter files of that day (and the
    hours next to midnight, for late events), plus captures named otherwise (read whole)."""
    near = {day, day - timedelta(days=1), day + timedelta(days=1)}
    out = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or not CAPTURE_NAME.search(path.name):
            continue
        hour = CAPTURE_HOUR.search(path.name)
        if hour:
            file_day = datetime.strptime(hour[1], "%Y%m%d").date()
            if file_day not in near:
                continue
        out.append(path)
    return out


def to_us(value: str) -> int:
    """A dump timestamp (ms or µs since the epoch) in µs."""
    raw = int(value)
    return raw if raw >= US_THRESHOLD else raw * 1000


def _open_text(path: Path) -> io.TextIOBase:
    try:
        if path.suffix == ".zip":
            archive = zipfile.ZipFile(path)
            names = [n for n in archive.namelist() if n.endswith(".csv")]
            if not names:
                raise InputError(f"archive {path}: no CSV inside")
            return io.TextIOWrapper(archive.open(names[0]), encoding="utf-8")
        return path.open("r", encoding="utf-8", newline="")
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"archive {path}: cannot read ({exc})") from None


def read_dump(dump: DumpFile, normalize, spec_of=None) -> Iterator[Trade]:
    """Trades of one dump file, in file order. A malformed line raises InputError naming it.
    `spec_of(native)` (the venue's instrument catalog) converts contract sizes (COIN-M) to
    BASE like the live adapter; without it the symbol alone gives the instrument type."""
    i_id, i_price, i_amount, i_time, i_maker = _COLUMNS[dump.kind]
    spec = spec_of(dump.native_symbol) if spec_of is not None else \
        instruments.spec_of(normalize(dump.native_symbol))
    symbol = spec.symbol
    with _open_text(dump.path) as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or (line_no == 1 and not row[0].strip().isdigit()):
                continue  # empty line or header row
            try:
                ts = to_us(row[i_time])
                price, size = float(row[i_price]), float(row[i_amount])
                yield Trade(
                    dump.venue, symbol, dump.native_symbol, row[i_id].strip(),
                    price, spec.base(size, price),
                    "sell" if row[i_maker].strip().lower() == "true" else "buy",
                    ts, ts,  # no receive time in a dump: the event time stands in
                    spec.kind, size, spec.contract_size,
                )
            except (IndexError, ValueError):
                raise InputError(f"archive {dump.path}: line {line_no} is not a {dump.kind} row") from None
