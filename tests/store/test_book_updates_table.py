"""market.book_updates (migration 016): Tardis incremental_book_L2 shape plus provenance,
and a redelivered level update collapses while distinct updates stay."""

from __future__ import annotations

from datetime import UTC, datetime

from feedhouse.core.tables import BOOK_UPDATES, RECORD_TABLES
from feedhouse.store.client import warehouse

COLUMNS = ["venue", "symbol", "native_symbol", "instrument_type", "exchange_ts", "received_ts",
           "is_snapshot", "side", "price", "amount", "native_amount", "update_id",
           "prev_update_id", "feed"]
T = datetime(2021, 10, 12, 0, 28, 32, 68000, tzinfo=UTC)


def _row(price: float, amount: float, update_id: int = 499869752, snapshot: int = 0) -> list:
    return ["binance", "NKN-USDT", "NKNUSDT", "spot", T, T, snapshot, "bid", price, amount,
            amount, update_id, 499869749, "binance"]


def test_table_key_is_the_registered_key_and_redeliveries_collapse(initialized) -> None:
    with warehouse(initialized) as client:
        engine, key = client.query(
            "SELECT engine, sorting_key FROM system.tables "
            "WHERE database = 'market' AND name = 'book_updates'").result_rows[0]
        assert engine == "ReplacingMergeTree"
        assert key == BOOK_UPDATES.key_sql
        rows = [_row(0.3513, 6195.0), _row(0.3475, 5548.0), _row(0.3475, 0.0),
                _row(0.3513, 6195.0, snapshot=1)]
        client.insert("market.book_updates", rows, column_names=COLUMNS)
        # the same frame delivered again (another insert, another token)
        client.insert("market.book_updates", rows[:2], column_names=COLUMNS)
        assert client.query("SELECT count() FROM market.book_updates").result_rows == [(6,)]
        final = client.query(
            "SELECT price, amount, is_snapshot FROM market.book_updates FINAL "
            "ORDER BY price, amount, is_snapshot").result_rows
    assert final == [(0.3475, 0.0, 0), (0.3475, 5548.0, 0), (0.3513, 6195.0, 0),
                     (0.3513, 6195.0, 1)]


def test_book_updates_are_a_record_table_for_the_audit() -> None:
    assert BOOK_UPDATES in RECORD_TABLES
    assert BOOK_UPDATES.event_ts == "exchange_ts"
