"""The one insert function (feedhouse.store.insert) on an embedded store: the token drops a
repeated insert, extra settings reach the engine, refused inserts raise the ClickHouse
code, and stored rows are exactly the rows given (golden records, Nullable columns)."""

from __future__ import annotations

from datetime import datetime

import orjson
import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from dataflows.sink.batches import QUOTES, TRADES, rows_table, schema_of
from feedhouse.core.records import Trade
from feedhouse.store.classify import ErrorClass, classify_error
from feedhouse.store.client import warehouse
from feedhouse.store.insert import insert_arrow
from tests.support.paths import GOLDEN

T0 = 1_700_000_000_000_000


def twice(first: int) -> pa.Table:
    """Two rows with one key (venue, symbol, trade_id) and two more with another."""
    rows = [Trade("binance", "BTC-USDT", "BTCUSDT", str(first + i // 2), 100.0, 1.0, "buy", T0, T0)
            for i in range(4)]
    return rows_table(TRADES, rows, {"feed": "bn"})


def trade_counts(client) -> list[tuple]:
    return client.query("SELECT trade_id, count() FROM market.trades GROUP BY trade_id "
                        "ORDER BY trade_id").result_rows


def test_the_same_token_twice_stores_the_rows_once(initialized):
    four = pa.concat_tables([twice(k * 2).slice(0, 1) for k in range(4)])  # 4 keys
    with warehouse(initialized) as client:
        client.command("SYSTEM STOP MERGES market.trades")  # repeats stay visible
        insert_arrow(client, TRADES, four, "t:1")
        insert_arrow(client, TRADES, four, "t:1")  # a retry of a landed insert
        insert_arrow(client, TRADES, four, "t:2")  # another insert of the same rows
        stored = client.query("SELECT count() FROM market.trades").result_rows[0][0]
    assert stored == 8  # t:1 once, t:2 once (ReplacingMergeTree collapses keys later)


def test_settings_and_odd_tokens_reach_the_engine(initialized):
    odd = "t:it's \\ kept"  # quotes and backslashes are quoted, not refused
    with warehouse(initialized) as client:
        client.command("SYSTEM STOP MERGES market.trades")  # no background merge meanwhile
        insert_arrow(client, TRADES, twice(0), "t:merged")  # merged on insert by key
        insert_arrow(client, TRADES, twice(10), odd, settings={"optimize_on_insert": 0})
        insert_arrow(client, TRADES, twice(10), odd, settings={"optimize_on_insert": 0})
        counts = trade_counts(client)
        with pytest.raises(ValueError):
            insert_arrow(client, TRADES, twice(20), "t:x", settings={"max_threads = 1; --": 1})
    # the block not merged on insert keeps its repeats (ReplacingMergeTree merges them later);
    # the same token again stored nothing
    assert counts == [("0", 1), ("1", 1), ("10", 2), ("11", 2)]


def test_a_refused_insert_carries_its_code_and_the_client_stays_usable(initialized):
    bad = twice(0).append_column("bogus", pa.array([1] * 4))  # a column the table lacks
    with warehouse(initialized) as client:
        with pytest.raises(DatabaseError) as caught:
            insert_arrow(client, TRADES, bad, "t:bad")
        insert_arrow(client, TRADES, twice(0), "t:good")  # the handle is free and clean
        assert trade_counts(client) == [("0", 1), ("1", 1)]
    assert caught.value.code == 16  # NO_SUCH_COLUMN_IN_TABLE
    assert classify_error(caught.value) is ErrorClass.PERMANENT


def _golden_table(table: str, kind: str) -> pa.Table:
    """Every golden record of `kind` (trades/quotes) as the sink's Arrow table."""
    schema = schema_of(table)
    rows = []
    for path in sorted(GOLDEN.glob(f"*.{kind}.jsonl")):
        for line in path.read_bytes().splitlines():
            row = orjson.loads(line)
            for ts in ("exchange_ts", "received_ts"):
                row[ts] = datetime.fromisoformat(row[ts].replace("Z", "+00:00"))
            rows.append({**row, "feed": path.name.split(".")[0].lower()})
    return pa.Table.from_pylist(rows, schema=schema)


def _stored(client, table: str, data: pa.Table, order: str) -> pa.Table:
    names = ", ".join(data.column_names)
    got = client.query_arrow(f"SELECT {names} FROM {table} ORDER BY {order}")
    return pa.table([got[n].cast(data.schema.field(n).type) for n in data.column_names],
                    schema=data.schema)


@pytest.mark.parametrize(("table", "kind", "order"), [
    (TRADES, "trades", "venue, symbol, trade_id, exchange_ts, price, amount, side, received_ts"),
    (QUOTES, "quotes", "venue, symbol, exchange_ts, received_ts, update_id, bid_price, ask_price"),
])
def test_golden_records_are_stored_exactly(initialized, table, kind, order):
    data = _golden_table(table, kind)
    assert data.num_rows > 1000
    with warehouse(initialized) as client:
        client.command(f"SYSTEM STOP MERGES {table}")  # keep repeated keys as inserted
        insert_arrow(client, table, data, f"golden:{kind}", settings={"optimize_on_insert": 0})
        stored = _stored(client, table, data, order)
    expected = data.sort_by([(c.strip(), "ascending") for c in order.split(",")])
    assert stored.num_rows == data.num_rows
    assert stored.equals(expected)


def test_nullable_and_dictionary_columns_round_trip(initialized):
    data = pa.table({
        "k": pa.array([1, 2, 3, 2**64 - 1], pa.uint64()),
        "at": pa.array([0, -1, T0, 10_413_791_999_999_999], pa.timestamp("us", tz="UTC")),
        "maybe_at": pa.array([None, T0 + 1, None, 1], pa.timestamp("us", tz="UTC")),
        "name": pa.array(["a", "b", "a", "é'\\"]).dictionary_encode(),
        "maybe_name": pa.array([None, "x", "", None]),
        "maybe_value": pa.array([1.5, None, float("inf"), -0.0]),
        "i": pa.array([-(2**63), -1, 0, 2**63 - 1], pa.int64()),
    })
    with warehouse(initialized) as client:
        client.command("CREATE TABLE ops.insert_roundtrip (k UInt64, at DateTime64(6, 'UTC'), "
                       "maybe_at Nullable(DateTime64(6, 'UTC')), name LowCardinality(String), "
                       "maybe_name LowCardinality(Nullable(String)), maybe_value Nullable(Float64), "
                       "i Int64) ENGINE = MergeTree ORDER BY k")
        insert_arrow(client, "ops.insert_roundtrip", data, "rt")
        stored = _stored(client, "ops.insert_roundtrip", data.set_column(
            3, "name", data["name"].cast(pa.string())), "k")
    assert stored.to_pylist() == data.set_column(3, "name", data["name"].cast(pa.string())).to_pylist()


def test_a_large_insert_lands_once(initialized):
    n = 150_000
    rows = [("okx", "ETH-USDT", "ETH-USDT", str(i), 2000.0 + i, 0.1, "sell", T0 + i, T0 + i)
            for i in range(n)]
    data = rows_table(TRADES, rows, {"feed": "ok"})
    assert data.nbytes > 10 << 20
    with warehouse(initialized) as client:
        insert_arrow(client, TRADES, data, "big")
        insert_arrow(client, TRADES, data, "big")
        stored = client.query("SELECT count(), uniqExact(trade_id), sum(price) FROM market.trades")
    assert stored.result_rows == [(n, n, sum(2000.0 + i for i in range(n)))]
