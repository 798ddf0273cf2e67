"""Tardis.dev `incremental_book_L2` files read as columns for a book backfill.

File: `<exchange>_incremental_book_L2_<YYYY-MM-DD>_<SYMBOL>.csv[.gz]`, columns
`exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount` (times in µs,
`amount` the new total size at the level, 0 = removed; a run of is_snapshot rows is a full
book). The exchange -> venue and native spelling map is the trade backfill's
(archive_columns.TARDIS_VENUES) and symbols are the ones the live adapter stores for trades
(archive_columns.live_symbol), so backfilled and live books of a venue share their keys.
Sizes become BASE with the venue's contract terms as the live book parsers do. Tardis has
no venue sequence ids: update_id and prev_update_id are 0.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dataflows.books.columns import base_amounts
from dataflows.books.framing import spec_of_venue
from dataflows.sources.archive_columns import TARDIS_VENUES, live_symbol
from feedhouse.core.errors import InputError

TARDIS_BOOK_NAME = re.compile(
    r"^(?P<exchange>[a-z0-9-]+)_incremental_book_L2_(?P<day>\d{4}-\d{2}-\d{2})_(?P<symbol>.+?)"
    r"\.csv(?:\.gz)?$"
)
TARDIS_BOOK_COLUMNS = ["exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot",
                       "side", "price", "amount"]
_TYPES = {"exchange": pa.string(), "symbol": pa.string(), "timestamp": pa.int64(),
          "local_timestamp": pa.int64(), "is_snapshot": pa.bool_(), "side": pa.string(),
          "price": pa.float64(), "amount": pa.float64()}
_TS = pa.timestamp("us", tz="UTC")


def find_tardis_books(folder: Path, day: date, venue: str) -> list[tuple[Path, str]]:
    """(path, Tardis exchange) of every incremental_book_L2 file of `venue` for `day`."""
    out = []
    for path in sorted(Path(folder).rglob(f"*_incremental_book_L2_{day.isoformat()}_*")):
        match = TARDIS_BOOK_NAME.match(path.name)
        mapped = TARDIS_VENUES.get(match["exchange"]) if match else None
        if mapped is not None and mapped[0] == venue and path.is_file():
            out.append((path, match["exchange"]))  # type: ignore[index]
    return out


def read_tardis_book(path: Path | str, exchange: str | None = None, feed: str = "") -> pa.Table:
    """One incremental_book_L2 file as a market.book_updates Arrow table, in file order."""
    path = Path(path)
    if exchange is None:
        match = TARDIS_BOOK_NAME.match(path.name)
        if match is None:
            raise InputError(f"Tardis book file {path.name}: name is not "
                             "<exchange>_incremental_book_L2_<day>_<symbol>.csv[.gz]")
        exchange = match["exchange"]
    if exchange not in TARDIS_VENUES:
        raise InputError(f"Tardis book file {path.name}: unknown exchange {exchange!r}")
    venue, native_of, flavour = TARDIS_VENUES[exchange]
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types=_TYPES, include_columns=TARDIS_BOOK_COLUMNS, strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError, OSError) as exc:
        raise InputError(f"Tardis book file {path.name}: {str(exc).splitlines()[0][:200]}") from None
    sides = pc.utf8_lower(table["side"])
    if not pc.all(pc.is_in(sides, pa.array(["bid", "ask"]))).as_py() and table.num_rows:
        raise InputError(f"Tardis book file {path.name}: side must be bid or ask")
    price = table["price"].to_numpy()
    native_amount = table["amount"].to_numpy()
    if table.num_rows and not (np.all(price > 0) and np.all(native_amount >= 0)):
        raise InputError(f"Tardis book file {path.name}: prices must be > 0 and amounts >= 0")
    distinct = pc.unique(table["symbol"]).to_pylist()
    index = pc.index_in(table["symbol"], value_set=pa.array(distinct, pa.string()))
    natives = [native_of(s) for s in distinct]
    spec_of = spec_of_venue(venue)
    specs = [spec_of(n) for n in natives]
    symbols = [live_symbol(venue, n, flavour) or s.symbol for n, s in zip(natives, specs, strict=True)]
    codes = index.to_numpy() if not isinstance(index, pa.ChunkedArray) else index.combine_chunks().to_numpy()
    amount = native_amount.copy()
    for code, spec in enumerate(specs):
        rows = codes == code
        amount[rows] = base_amounts(native_amount[rows], price[rows], spec.contract_size, spec.inverse)
    n = table.num_rows

    def take(values: list[str]) -> pa.Array:
        return pc.take(pa.array(values, pa.string()), index)

    return pa.table({
        "venue": pa.repeat(pa.scalar(venue), n), "symbol": take(symbols),
        "native_symbol": take(natives), "instrument_type": take([s.kind for s in specs]),
        "exchange_ts": pc.cast(table["timestamp"], _TS),
        "received_ts": pc.cast(table["local_timestamp"], _TS),
        "is_snapshot": pc.cast(table["is_snapshot"], pa.uint8()), "side": sides,
        "price": pa.array(price), "amount": pa.array(amount),
        "native_amount": pa.array(native_amount),
        "update_id": pa.array(np.zeros(n, np.uint64)),
        "prev_update_id": pa.array(np.zeros(n, np.uint64)),
        "feed": pa.repeat(pa.scalar(feed or f"backfill:{venue}"), n),
    })
