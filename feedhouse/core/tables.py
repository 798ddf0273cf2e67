"""What the audit, the reconciliation and the Dagster observations need to know about a table.

One place names each data table's event-time column and its row key (the table's ORDER BY,
which is what ReplacingMergeTree collapses on), so "rows in the table" always means the same
thing: distinct keys, counted per feed and event-time minute.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableSpec:
    name: str  # database.table
    event_ts: str  # event-time column the ledger's record counters are keyed by
    key: tuple[str, ...]  # row identity (the ORDER BY of the table)
    feed_kinds: tuple[str, ...] = ()  # feed kinds (settings) that write it by default

    @property
    def key_sql(self) -> str:
        return ", ".join(self.key)


TRADES = TableSpec("market.trades", "exchange_ts", ("venue", "symbol", "trade_id"), ("exchange",))
QUOTES = TableSpec(  # one row per update: its venue's update id, else every field (migration 010)
    "market.quotes", "exchange_ts", ("venue", "symbol", "exchange_ts", "update_id", "bid_price",
                                     "ask_price", "bid_size", "ask_size")
)
BOOK_UPDATES = TableSpec(  # one row per level update (migration 016); redeliveries collapse
    "market.book_updates", "exchange_ts", ("venue", "symbol", "exchange_ts", "update_id",
                                           "is_snapshot", "side", "price", "amount")
)
READINGS = TableSpec("iot.readings", "device_ts", ("device_id", "sensor", "device_ts", "seq"), ("mqtt",))
DEAD_LETTER = TableSpec("ops.dead_letter", "received_ts", ("feed", "received_ts", "cityHash64(raw)"))

# Tables whose rows the ledger's `inserted` counter counts (records of a feed).
RECORD_TABLES: tuple[TableSpec, ...] = (TRADES, QUOTES, READINGS, BOOK_UPDATES)
# Tables a buffer replay can write and whose new rows can be counted per key.
COUNTABLE_TABLES: dict[str, TableSpec] = {t.name: t for t in (*RECORD_TABLES, DEAD_LETTER)}


def default_table(feed: str, kinds: dict[str, str] | None = None) -> TableSpec:
    """The table a feed writes when the data does not say: by its configured kind.

    Backfill feeds (`backfill:<venue>`) and unknown feeds write trades.
    """
    kind = (kinds or {}).get(feed)
    for spec in RECORD_TABLES:
        if kind in spec.feed_kinds:
            return spec
    return TRADES


def table_label(names: list[str] | set[str]) -> str:
    """Stable label for the tables a feed writes, in RECORD_TABLES order ('a+b')."""
    order = [t.name for t in RECORD_TABLES]
    return "+".join(sorted(names, key=lambda n: order.index(n) if n in order else len(order)))
