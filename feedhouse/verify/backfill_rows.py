"""What a backfill writes: archive columns as market.trades rows (instrument type by the
symbol rule), refused rows as dead letters, and a chunk's insert with its ledger rows
under deterministic tokens."""

from __future__ import annotations

from datetime import date

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dataflows.sink.batches import (
    DEAD_LETTER,
    LEDGER_TABLE,
    TRADES,
    digest,
    ledger_table,
    make_batch,
    schema_of,
)
from dataflows.venues.instruments import kind_of
from feedhouse.store.insert import insert_arrow
from feedhouse.store.ledger import LedgerDelta


def dead_letters(client, feed: str, venue: str, day: date, file_name: str, day_start_us: int,
                 bad: list[tuple[dict, str]]) -> None:
    """Refused archive rows (with their reasons) into ops.dead_letter, once per file."""
    lo = day_start_us
    raws = [orjson.dumps({"file": file_name, "row": {k: v for k, v in row.items() if k != "hashed"}},
                         option=orjson.OPT_SERIALIZE_NUMPY).decode() for row, _ in bad]
    schema = schema_of(DEAD_LETTER)
    data = pa.table([pa.array([feed] * len(bad)), pa.array([lo] * len(bad), pa.int64()).cast(schema.field(1).type),
                     pa.array(raws), pa.array([r for _, r in bad])], schema=schema)
    token = "backfill/" + digest(None, venue, day, file_name, "dead", len(bad), raws[0], raws[-1])
    insert_arrow(client, DEAD_LETTER, data, token)


def _instrument_types(symbols: pa.ChunkedArray) -> pa.Array:
    """instrument_type per row, by the symbol rule (one lookup per distinct symbol)."""
    distinct = pc.unique(symbols)
    kinds = pa.array([kind_of(s) for s in distinct.to_pylist()], pa.string())
    return pc.take(kinds, pc.index_in(symbols, value_set=distinct))


def _trades_table(feed: str, venue: str, part: pa.Table) -> pa.Table:
    schema = schema_of(TRADES)
    n = part.num_rows
    ts_type = schema.field("exchange_ts").type
    columns = {
        "venue": pa.repeat(pa.scalar(venue, pa.string()), n),
        "symbol": part["symbol"], "native_symbol": part["native_symbol"],
        "trade_id": part["trade_id"], "price": part["price"], "amount": part["amount"],
        "side": part["side"],
        "exchange_ts": part["exchange_ts"].cast(ts_type), "received_ts": part["received_ts"].cast(ts_type),
        # amounts in BASE with the live adapters' specs, the archive's sizes kept
        "instrument_type": _instrument_types(part["symbol"]),
        "native_amount": part["native_amount"],
        "contract_size": part["contract_size"],
        "feed": pa.repeat(pa.scalar(feed, pa.string()), n),
    }
    return pa.table([columns[name] for name in schema.names], schema=schema)


def insert_chunk(client, feed: str, venue: str, day: date, name: str, part: pa.Table) -> None:
    last = part.num_rows - 1
    sym, ids = part["symbol"], part["trade_id"]
    token = "backfill/" + digest(
        None, venue, day, name, sym[0].as_py(), ids[0].as_py(), sym[last].as_py(), ids[last].as_py(),
        part.num_rows,
    )
    batch = make_batch(TRADES, feed, token, _trades_table(feed, venue, part))
    ledger = LedgerDelta()
    ledger.add_minutes(feed, batch.minutes, "parsed")
    ledger.add_minutes(feed, batch.minutes, "inserted")
    # ledger first: see the module doc (a crash in between heals on the rerun)
    insert_arrow(client, LEDGER_TABLE, ledger_table(ledger), token + "/ledger")
    insert_arrow(client, TRADES, batch.data, token)


