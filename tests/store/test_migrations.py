"""Schema migrations on a fresh embedded store."""

from __future__ import annotations

import pytest

from feedhouse.store.client import warehouse
from feedhouse.store.migrations import discover, init_schema
from tests.support.cli import run_cli

EXPECTED = {
    ("market", "trades"): ("ReplacingMergeTree", "venue, symbol, trade_id"),
    ("market", "quotes"): ("ReplacingMergeTree", None),
    ("market", "ohlcv_1m"): ("ReplacingMergeTree", "venue, symbol, minute"),
    ("iot", "readings"): ("ReplacingMergeTree", "device_id, sensor, device_ts, seq"),
    ("ops", "ingest_ledger"): ("SummingMergeTree", "feed, minute"),
    ("ops", "dead_letter"): ("MergeTree", None),
    ("ops", "replay_log"): ("MergeTree", None),
    ("ops", "feed_gaps"): ("MergeTree", None),
    ("ops", "row_count_audit"): ("ReplacingMergeTree", "feed, table_name, minute"),
    ("ops", "reconciliation"): ("MergeTree", None),
    ("ops", "quality_results"): ("MergeTree", None),
    ("ops", "schema_migrations"): ("MergeTree", "version"),
}


def _schema(client):
    return client.query(
        "SELECT database, name, engine, sorting_key, create_table_query FROM system.tables "
        "WHERE database IN ('market', 'iot', 'ops') ORDER BY database, name"
    ).result_rows


def test_all_tables_with_engines_and_keys(settings) -> None:
    applied, _ = init_schema(settings)
    assert applied == [m.path.name for m in discover()]
    assert applied[:4] == ["001_databases.sql", "002_market.sql", "003_iot.sql", "004_ops.sql"]
    with warehouse(settings) as client:
        rows = {(db, name): (engine, key) for db, name, engine, key, _ in _schema(client)}
        comments = client.query(
            "SELECT count() FROM system.columns WHERE database IN ('market','iot','ops') "
            "AND comment = '' AND table NOT LIKE '%_mv'"
        ).result_rows[0][0]
    for table, (engine, key) in EXPECTED.items():
        assert rows[table][0] == engine, table
        if key is not None:
            assert rows[table][1] == key, table
    assert comments == 0, "every column says what it means"


def test_applying_twice_changes_nothing(settings) -> None:
    init_schema(settings)
    with warehouse(settings) as client:
        before = _schema(client)
    applied, _ = init_schema(settings)
    assert applied == []
    with warehouse(settings) as client:
        assert _schema(client) == before
        assert client.query("SELECT count() FROM ops.schema_migrations").result_rows == [(len(discover()),)]


def test_same_dedup_token_stores_rows_once(initialized) -> None:
    columns = ["venue", "symbol", "native_symbol", "trade_id", "price", "amount", "side",
               "exchange_ts", "received_ts"]
    from datetime import UTC, datetime

    ts = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    rows = [["binance", "BTC-USDT", "BTCUSDT", str(i), 42000.0 + i, 0.1, "buy", ts, ts]
            for i in range(3)]
    with warehouse(initialized) as client:
        for _ in range(2):
            client.insert("market.trades", rows, column_names=columns,
                          settings={"insert_deduplication_token": "binance:0:trades:1-3"})
        client.insert("market.trades", rows, column_names=columns,
                      settings={"insert_deduplication_token": "binance:0:trades:4-6"})
        counts = client.query(
            "SELECT count(), (SELECT count() FROM market.trades FINAL) FROM market.trades"
        ).result_rows[0]
    # the retried batch is dropped; a different token is a different batch
    assert counts == (6, 3)


@pytest.mark.integration
def test_init_cli_twice_same_schema(tmp_path) -> None:
    first = run_cli("init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"applied {len(discover())} migration(s)" in first.stdout
    second = run_cli("init", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "schema up to date" in second.stdout
    assert first.stdout.split("feedhouse tables")[1] == second.stdout.split("feedhouse tables")[1]


def test_every_table_written_with_insert_tokens_honours_them(initialized) -> None:
    # batches to these tables may reach ClickHouse twice (retry, buffer replay): without a
    # dedup window a non-replicated MergeTree ignores insert_deduplication_token
    tokened = ["market.trades", "market.quotes", "iot.readings", "ops.ingest_ledger",
               "ops.dead_letter", "ops.replay_log", "ops.feed_gaps"]
    with warehouse(initialized) as client:
        rows = dict(client.query(
            "SELECT database || '.' || name, create_table_query FROM system.tables "
            "WHERE database IN ('market', 'iot', 'ops')").result_rows)
    missing = [t for t in tokened if "non_replicated_deduplication_window = 10000" not in rows[t]]
    assert missing == []
