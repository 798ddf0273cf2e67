"""Large Arrow inserts (feedhouse.store.bulk): the token and extra query settings reach
the embedded engine through its INFILE path."""

from __future__ import annotations

import pyarrow as pa

from dataflows.sink.batches import TRADES, rows_table
from feedhouse.core.records import Trade
from feedhouse.store.bulk import insert_arrow_bulk
from feedhouse.store.client import warehouse

T0 = 1_700_000_000_000_000


def twice(first: int) -> pa.Table:
    """Two rows with one key (venue, symbol, trade_id) and two more with another."""
    rows = [Trade("binance", "BTC-USDT", "BTCUSDT", str(first + i // 2), 100.0, 1.0, "buy", T0, T0)
            for i in range(4)]
    return rows_table(TRADES, rows, {"feed": "bn"})


def test_settings_and_token_reach_the_engine(initialized):
    with warehouse(initialized) as client:
        client.command("SYSTEM STOP MERGES market.trades")  # no background merge meanwhile
        insert_arrow_bulk(client, TRADES, twice(0), "t:merged")  # merged on insert by key
        insert_arrow_bulk(client, TRADES, twice(10), "t:kept", settings={"optimize_on_insert": 0})
        insert_arrow_bulk(client, TRADES, twice(10), "t:kept", settings={"optimize_on_insert": 0})
        counts = client.query("SELECT trade_id, count() FROM market.trades GROUP BY trade_id "
                              "ORDER BY trade_id").result_rows
    # the block not merged on insert keeps its repeats (ReplacingMergeTree merges them later);
    # the same token again stored nothing
    assert counts == [("0", 1), ("1", 1), ("10", 2), ("11", 2)]
