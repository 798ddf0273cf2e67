"""Archive files read as columns (Arrow) for the backfill: Binance daily dumps, Tardis.dev
normalized trade files, and recorded captures (through the live adapters).

Every reader returns an Arrow table of trades in one shape, `COLUMNS`:

    symbol, native_symbol, trade_id (strings), price, amount (float64), side (string),
    exchange_ts, received_ts (int64 µs since the epoch), hashed (bool: the id is a stable
    hash of the trade's fields because the archive had none), native_amount,
    contract_size (float64: the archive's size and the contract size that made `amount`
    BASE, as the live adapter does it: dataflows/sources/archive_base.py)

Symbols and ids are the live adapters': the native symbol is spelled as the venue's
WebSocket sends it, and the normalized symbol is what the adapter's own `parse` makes of
a minimal trade frame carrying that native symbol (`live_symbol`), so a backfilled day and
a live day of the same venue land on the same (venue, symbol, trade_id) keys, whatever
the adapters' symbol rules are (they may change: we follow them, we do not copy them).

Binance dumps (see dataflows/archive.py for names, layout and id rules): `trades` and
`aggTrades`, spot / USD-M / COIN-M, with or without a header row, times in ms or µs.

Tardis.dev (`<exchange>_trades_<YYYY-MM-DD>_<SYMBOL>.csv[.gz]`, columns
`exchange,symbol,timestamp,local_timestamp,id,side,price,amount`, µs): Tardis spells symbols
in upper case as the exchange's REST API does; `TARDIS_VENUES` maps each Tardis exchange to
the feedhouse venue and the native spelling of its WebSocket (Bitfinex `tBTCUSD`, Bitstamp
and HTX lower case). Where the venue has no trade id (Tardis leaves `id` empty: Kraken,
Bitget v1), the id is `stable_trade_id` of the trade's fields and `hashed` is true, so the
backfill also matches those rows with stored ones by content (time, price, amount, side).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dataflows.sources.archive import US_THRESHOLD, DumpFile, find_captures, find_dumps
from dataflows.sources.archive_base import adapter_for, to_base
from dataflows.sources.capture import capture_url, parse_capture
from dataflows.venues import venue_for_url
from dataflows.venues.common import stable_trade_id
from feedhouse.core.errors import InputError
from feedhouse.core.records import Trade

COLUMNS = pa.schema([
    ("symbol", pa.string()), ("native_symbol", pa.string()), ("trade_id", pa.string()),
    ("price", pa.float64()), ("amount", pa.float64()), ("side", pa.string()),
    ("exchange_ts", pa.int64()), ("received_ts", pa.int64()), ("hashed", pa.bool_()),
    ("native_amount", pa.float64()), ("contract_size", pa.float64()),
])

TARDIS_NAME = re.compile(
    r"^(?P<exchange>[a-z0-9-]+)_trades_(?P<day>\d{4}-\d{2}-\d{2})_(?P<symbol>.+?)\.csv(?:\.gz)?$"
)
TARDIS_COLUMNS = ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price",
                  "amount"]

# Tardis exchange -> (feedhouse venue, native spelling of a Tardis symbol, probe flavour)
_SAME: Callable[[str], str] = str
TARDIS_VENUES: dict[str, tuple[str, Callable[[str], str], str]] = {
    "binance": ("binance", _SAME, ""),
    "binance-futures": ("binance_futures", _SAME, ""),
    "binance-delivery": ("binance_delivery", _SAME, ""),
    "binance-us": ("binance_us", _SAME, ""),
    "bitfinex": ("bitfinex", lambda s: s if s[:1] in ("t", "f") else "t" + s, ""),
    "bitget": ("bitget", _SAME, "SPOT"),
    "bitget-futures": ("bitget", _SAME, "USDT-FUTURES"),
    "bitmex": ("bitmex", _SAME, ""),
    "bitstamp": ("bitstamp", str.lower, ""),
    "bybit": ("bybit", _SAME, ""),  # derivatives: inverse or linear by the name
    "bybit-spot": ("bybit", _SAME, "spot"),  # flavour: the Bybit market
    "coinbase": ("coinbase_exchange", _SAME, ""),  # Tardis records the Exchange feed
    "deribit": ("deribit", _SAME, ""),
    "gate-io": ("gateio", _SAME, ""),
    "gemini": ("gemini", _SAME, ""),
    "huobi": ("huobi", str.lower, ""),
    "kraken": ("kraken", _SAME, ""),
    "okex": ("okx", _SAME, ""),
    "okex-futures": ("okx", _SAME, ""),
    "okex-swap": ("okx", _SAME, ""),
    "okex-options": ("okx", _SAME, ""),
    "okx": ("okx", _SAME, ""),
}

# --- the live adapters' symbols -----------------------------------------------------------

_T_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z, a valid time for every probe frame
_ISO = "2023-11-14T22:13:20.000000Z"
_BITFINEX_PROBE_CHANNEL = 2_000_000_011  # far above ids Bitfinex assigns


def _probe_frames(venue: str, native: str, flavour: str) -> list[str]:
    """Minimal live trade frame(s) of `venue` carrying `native` (see `live_symbol`)."""
    n = orjson.dumps(native).decode()
    if venue.startswith("binance"):
        return [f'{{"e":"trade","E":1,"s":{n},"t":1,"p":"1","q":"1","T":{_T_MS},"m":false}}']
    frames = {
        "bitget": f'{{"action":"update","arg":{{"instType":"{flavour or "SPOT"}","channel":"trade",'
                  f'"instId":{n}}},"data":[{{"ts":"{_T_MS}","price":"1","size":"1","side":"buy",'
                  f'"tradeId":"1"}}]}}',
        "bitmex": f'{{"table":"trade","action":"insert","data":[{{"timestamp":"{_ISO}",'
                  f'"symbol":{n},"side":"Buy","size":1,"price":1,"trdMatchID":"x"}}]}}',
        "bitstamp": f'{{"event":"trade","channel":{orjson.dumps("live_trades_" + native).decode()},'
                    f'"data":{{"id":1,"price_str":"1","amount_str":"1","type":0,'
                    f'"microtimestamp":"{_T_MS * 1000}"}}}}',
        "bybit": f'{{"topic":{orjson.dumps("publicTrade." + native).decode()},"data":[{{"T":{_T_MS},'
                 f'"s":{n},"S":"Buy","v":"1","p":"1","i":"x"}}]}}',
        "coinbase_exchange": f'{{"type":"match","trade_id":1,"side":"buy","size":"1","price":"1",'
                    f'"product_id":{n},"time":"{_ISO}"}}',
        "deribit": f'{{"method":"subscription","params":{{"channel":'
                   f'{orjson.dumps("trades." + native + ".100ms").decode()},"data":[{{"trade_id":"1",'
                   f'"price":1,"amount":1,"direction":"buy","instrument_name":{n},'
                   f'"timestamp":{_T_MS}}}]}}}}',
        "gateio": f'{{"channel":"spot.trades","event":"update","result":{{"id":1,"price":"1",'
                  f'"amount":"1","side":"buy","currency_pair":{n},"create_time_ms":"{_T_MS}.0"}}}}',
        "gemini": f'{{"type":"trade","symbol":{n},"event_id":1,"price":"1","quantity":"1",'
                  f'"side":"buy","timestamp":{_T_MS}}}',
        "huobi": f'{{"ch":{orjson.dumps("market." + native + ".trade.detail").decode()},"ts":1,'
                 f'"tick":{{"data":[{{"tradeId":1,"price":1,"amount":1,"direction":"buy",'
                 f'"ts":{_T_MS}}}]}}}}',
        "kraken": f'[0,[["1.0","1.0","{_T_MS // 1000}.000000","b","m",""]],"trade",{n}]',
        "okx": f'{{"arg":{{"channel":"trades","instId":{n}}},"data":[{{"instId":{n},'
               f'"tradeId":"1","px":"1","sz":"1","side":"buy","ts":"{_T_MS}"}}]}}',
        "bitfinex": f'[{_BITFINEX_PROBE_CHANNEL},"te",[1,{_T_MS},1,1]]',
    }
    frame = frames.get(venue)
    if frame is None:
        return []
    if venue == "bitfinex":  # data frames name a channel announced by a `subscribed` event
        return [f'{{"event":"subscribed","channel":"trades","chanId":{_BITFINEX_PROBE_CHANNEL},'
                f'"symbol":{n}}}', frame]
    return [frame]


_live_symbols: dict[tuple[str, str, str], str] = {}


def live_symbol(venue: str, native: str, flavour: str = "") -> str:
    """The normalized symbol the live adapter of `venue` stores for trades of `native`.

    Asks the adapter itself: its `parse` reads a minimal trade frame carrying `native`
    (`flavour`: Bitget's instType). Falls back to the venue's `normalize_symbol` when no
    probe frame exists or the adapter yields no trade; '' when that fails too (the rows
    then fail the contract's symbol rule).
    """
    key = (venue, native, flavour)
    found = _live_symbols.get(key)
    if found is not None:
        return found
    adapter = adapter_for(venue, native, flavour)
    symbol = ""
    for frame in _probe_frames(venue, native, flavour):
        parsed = adapter.parse(frame, _T_MS * 1000)
        if parsed.trades:
            symbol = parsed.trades[0].symbol
    if not symbol:
        try:
            symbol = adapter.normalize_symbol(native)
        except Exception:  # noqa: BLE001 - an unmappable symbol is invalid data, said later
            symbol = ""
    _live_symbols[key] = symbol
    return symbol


# --- files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    kind: str  # trades | aggTrades (Binance) | tardis | capture
    venue: str
    native_symbol: str = ""  # Binance dumps: from the name
    exchange: str = ""  # Tardis: the exchange id of the file name


def find_tardis(folder: Path, day: date, venue: str) -> list[ArchiveFile]:
    """Tardis.dev trade files of `venue` for `day` under `folder`."""
    out = []
    for path in sorted(Path(folder).rglob(f"*_trades_{day.isoformat()}_*")):
        match = TARDIS_NAME.match(path.name)
        if not match or not path.is_file():
            continue
        mapped = TARDIS_VENUES.get(match["exchange"])
        if mapped is not None and mapped[0] == venue:
            out.append(ArchiveFile(path, "tardis", venue, exchange=match["exchange"]))
    return out


def find_files(folder: Path, day: date, venue: str) -> list[ArchiveFile]:
    """Every archive file of `venue` for `day`: Binance dumps, Tardis files, captures."""

    files = [ArchiveFile(d.path, d.kind, venue, d.native_symbol) for d in find_dumps(folder, day, venue)]
    files += find_tardis(folder, day, venue)
    for path in find_captures(folder, day):
        url = capture_url(path)
        found = venue_for_url(url) if url else None
        if found is not None and found.name == venue:
            files.append(ArchiveFile(path, "capture", venue))
    return files


def read_file(file: ArchiveFile) -> pa.Table:
    """The trades of one archive file as a `COLUMNS` table, in file order."""
    if file.kind in ("trades", "aggTrades"):
        return read_dump_columns(DumpFile(file.path, file.venue, file.native_symbol, file.kind, date.min))
    if file.kind == "tardis":
        return read_tardis(file)
    if file.kind == "capture":

        _, parsed, _ = parse_capture(file.path, file.venue)
        return trades_columns(parsed.trades)
    raise InputError(f"archive {file.path}: unknown kind {file.kind!r}")


def trades_columns(trades: list[Trade]) -> pa.Table:
    """`Trade` records (a capture parsed by the live adapter) as a `COLUMNS` table."""
    if not trades:
        return COLUMNS.empty_table()
    cols = list(zip(*trades, strict=True))
    arrays = [pa.array(cols[i], type=COLUMNS.field(i - 1).type) for i in range(1, 9)]
    arrays.append(pa.array(np.zeros(len(trades), dtype=bool)))
    arrays += [pa.array(cols[10], pa.float64()), pa.array(cols[11], pa.float64())]
    return pa.Table.from_arrays(arrays, schema=COLUMNS)


def _csv_error(path: Path, what: str, exc: Exception) -> InputError:
    text = " ".join(str(exc).split())[:200]
    return InputError(f"archive {path}: not a {what} file ({text})")


# Column positions per dump kind: (id, price, amount, time, is_buyer_maker), as archive.py
_DUMP_COLUMNS = {"trades": (0, 1, 2, 4, 5), "aggTrades": (0, 1, 2, 5, 6)}
_TRUE = ["true", "True", "TRUE", "1"]
_FALSE = ["false", "False", "FALSE", "0"]


@contextmanager
def _dump_stream(path: Path) -> Iterator[Path | IO[bytes]]:
    """A plain CSV's path (pyarrow reads it with threads), or a zipped CSV's member stream
    (decompressed while pyarrow parses)."""
    if path.suffix != ".zip":
        yield path
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".csv")]
            if not names:
                raise InputError(f"archive {path}: no CSV inside")
            with archive.open(names[0]) as member:
                yield member
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"archive {path}: cannot read ({exc})") from None


def _dump_head(path: Path) -> bytes:
    with _dump_stream(path) as source:
        if isinstance(source, Path):
            with source.open("rb") as handle:
                return handle.read(256)
        return source.read(256)


def read_dump_columns(dump: DumpFile) -> pa.Table:
    """One Binance dump as a `COLUMNS` table (header row skipped, ms -> µs per value)."""
    i_id, i_price, i_amount, i_time, i_maker = _DUMP_COLUMNS[dump.kind]
    head = _dump_head(dump.path).lstrip()
    if not head.strip():
        return COLUMNS.empty_table()
    header = not head[:1].isdigit()
    names = {i_id: "id", i_price: "price", i_amount: "amount", i_time: "time", i_maker: "maker"}
    try:
        with _dump_stream(dump.path) as source:
            table = pacsv.read_csv(
                source,
                read_options=pacsv.ReadOptions(autogenerate_column_names=True,
                                               skip_rows=1 if header else 0, block_size=16 << 20),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[f"f{i}" for i in names],
                    column_types={f"f{i_id}": pa.string(), f"f{i_price}": pa.float64(),
                                  f"f{i_amount}": pa.float64(), f"f{i_time}": pa.int64(),
                                  f"f{i_maker}": pa.bool_()},
                    true_values=_TRUE, false_values=_FALSE, strings_can_be_null=False),
            )
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError) as exc:
        raise _csv_error(dump.path, dump.kind, exc) from None
    table = table.rename_columns([names[int(n[1:])] for n in table.column_names])
    n = table.num_rows
    raw_ts = table["time"]
    ts = pc.if_else(pc.greater_equal(raw_ts, US_THRESHOLD), raw_ts, pc.multiply(raw_ts, 1000))
    native = dump.native_symbol
    symbol = live_symbol(dump.venue, native)
    maker = pc.fill_null(table["maker"], False)
    amount, size, contract = to_base(dump.venue, _const(native, n), table["price"], table["amount"])
    return pa.Table.from_arrays([
        _const(symbol, n), _const(native, n), pc.utf8_trim_whitespace(table["id"]),
        table["price"], amount, pc.if_else(maker, "sell", "buy"), ts, ts,
        _const_bool(False, n), size, contract,
    ], schema=COLUMNS)  # no receive time in a dump: the event time stands in


def _const(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _const_bool(value: bool, n: int) -> pa.Array:
    return pa.array(np.full(n, value, dtype=bool))


def read_tardis(file: ArchiveFile) -> pa.Table:
    """One Tardis.dev trades file as a `COLUMNS` table (see module doc)."""
    venue, native_of, flavour = TARDIS_VENUES[file.exchange]
    types = {"exchange": pa.string(), "symbol": pa.string(), "timestamp": pa.int64(),
             "local_timestamp": pa.int64(), "id": pa.string(), "side": pa.string(),
             "price": pa.float64(), "amount": pa.float64()}
    try:
        table = pacsv.read_csv(
            file.path,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=TARDIS_COLUMNS,
                                                 strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError, OSError) as exc:
        raise _csv_error(file.path, "Tardis.dev trades", exc) from None
    n = table.num_rows
    if not n:
        return COLUMNS.empty_table()
    # one symbol per file in practice; map each distinct one once
    tardis_symbols = table["symbol"]
    distinct = pc.unique(tardis_symbols).to_pylist()
    natives = [native_of(s) for s in distinct]
    symbols = [live_symbol(venue, s, flavour) for s in natives]
    index = pc.index_in(tardis_symbols, value_set=pa.array(distinct, pa.string()))
    native_col = pc.take(pa.array(natives, pa.string()), index)
    symbol_col = pc.take(pa.array(symbols, pa.string()), index)
    ids = table["id"]
    missing = pc.equal(pc.utf8_length(ids), 0)
    hashed = missing.combine_chunks() if isinstance(missing, pa.ChunkedArray) else missing
    if pc.any(hashed).as_py():
        ids = _hash_missing_ids(table, native_col, hashed, file.exchange)
    amount, size, contract = to_base(venue, native_col, table["price"], table["amount"], flavour)
    return pa.Table.from_arrays([
        symbol_col, native_col, ids, table["price"], amount,
        pc.utf8_lower(table["side"]), table["timestamp"], table["local_timestamp"],
        pc.fill_null(hashed, False), size, contract,
    ], schema=COLUMNS)


def _hash_missing_ids(table: pa.Table, native: pa.Array, missing: pa.Array, exchange: str) -> pa.Array:
    """Ids for rows without one: the shared `stable_trade_id` of the trade's own fields
    (a repeated trade hashes the same). One Python call per such row: only venues without
    ids (Kraken, Bitget v1) have them."""
    ids = table["id"].to_pylist()
    rows = np.flatnonzero(missing.to_numpy(zero_copy_only=False))
    nat = native.to_pylist() if not isinstance(native, pa.ChunkedArray) else native.to_pylist()
    ts = table["timestamp"].to_numpy()
    price = table["price"].to_pylist()
    amount = table["amount"].to_pylist()
    side = table["side"].to_pylist()
    for i in rows:
        ids[i] = stable_trade_id("tardis", exchange, nat[i], int(ts[i]), repr(price[i]),
                                 repr(amount[i]), side[i])
    return pa.array(ids, pa.string())
