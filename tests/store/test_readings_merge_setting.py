"""iot.readings merges its small parts 20 at a time (migration 017) with the merge
selector's base at 20 (018): an MQTT feed inserts every mqtt.flush_ms, and merging each few
new parts into the big one cost as much CPU as the inserts (docs/mqtt-performance.md).
market.trades does the same (019): at paced rates the committer inserts back to back.
Redelivered readings and trades inserted twice still collapse under FINAL."""

from __future__ import annotations

from datetime import UTC, datetime

from feedhouse.store.client import warehouse

COLUMNS = ["device_id", "sensor", "seq", "value", "unit", "device_ts", "received_ts", "feed"]
T = datetime(2026, 12, 2, 16, 0, 0, tzinfo=UTC)


def _assert_merges_in_batches_of_20(client, database: str, table: str) -> None:
    ddl = client.query("SELECT create_table_query FROM system.tables "
                       "WHERE database = {d:String} AND name = {t:String}",
                       parameters={"d": database, "t": table}).result_rows[0][0]
    assert "min_parts_to_merge_at_once = 20" in ddl
    assert "merge_selector_base = 20" in ddl


def test_readings_wait_for_20_parts_and_repeats_still_collapse(initialized) -> None:
    with warehouse(initialized) as client:
        _assert_merges_in_batches_of_20(client, "iot", "readings")
        # three small inserts, the last one a redelivery of seq 1 (received again later,
        # so not the same block: ClickHouse's insert deduplication does not drop it)
        for n, seq in enumerate((0, 1, 1)):
            received = T.replace(second=n)
            row = ["d1", "temperature", seq, 20.5, "C", T, received, "f"]
            client.insert("iot.readings", [row], column_names=COLUMNS)
        assert client.query("SELECT count() FROM iot.readings").result_rows == [(3,)]
        assert client.query("SELECT seq FROM iot.readings FINAL ORDER BY seq"
                            ).result_rows == [(0,), (1,)]


TRADE_COLUMNS = ["venue", "symbol", "native_symbol", "trade_id", "price", "amount", "side",
                 "exchange_ts", "received_ts", "feed"]


def test_trades_wait_for_20_parts_and_repeats_still_collapse(initialized) -> None:
    with warehouse(initialized) as client:
        _assert_merges_in_batches_of_20(client, "market", "trades")
        # the same trade in two inserts (a batch written again after a restart)
        for n in range(2):
            row = ["binance", "BTC-USDT", "BTCUSDT", "42", 100.0, 0.5, "buy", T,
                   T.replace(second=n), "f"]
            client.insert("market.trades", [row], column_names=TRADE_COLUMNS)
        assert client.query("SELECT count() FROM market.trades").result_rows == [(2,)]
        assert client.query("SELECT count() FROM market.trades FINAL").result_rows == [(1,)]
