"""The ClickHouse tables as assets. The streaming ingest writes them, so Dagster OBSERVES them
on a schedule (row counts, last event time, rows per venue/feed, lag) instead of
materializing them. One op observes every selected table in one short warehouse visit.
"""


import time
import warnings
from dataclasses import dataclass

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BetaWarning,
    DataVersion,
    MetadataValue,
    ObserveResult,
    multi_observable_source_asset,
)

from orchestration.keys import BACKFILL_KEY, BOOKS_BACKFILL_KEY, OWNERS, RECON_KEY
from orchestration.resources.warehouse import WarehouseResource


@dataclass(frozen=True)
class TableAsset:
    table: str  # database.table
    description: str
    event_ts: str  # newest value = "last event time"; lag = now - that
    by: tuple[str, ...]  # rows broken down per value of each column
    deps: tuple[AssetKey, ...] = ()  # what writes into this table (the lineage in the UI)

    @property
    def key(self) -> AssetKey:
        return AssetKey(self.table.split("."))

    @property
    def group(self) -> str:
        return self.table.split(".")[0]


TABLES = [
    TableAsset("market.trades", "Normalized trades from every exchange feed and backfill; one row "
               "per (venue, symbol, trade_id).", "exchange_ts", ("venue", "feed"),
               deps=(BACKFILL_KEY,)),
    TableAsset("market.quotes", "Best bid/ask updates where a venue provides them.", "exchange_ts",
               ("venue", "feed")),
    TableAsset("market.book_updates", "L2 order-book level updates and snapshots (channels: "
               "[books]) and Tardis book backfills; book_at rebuilds a book at any time.", "exchange_ts",
               ("venue", "feed"), deps=(BOOKS_BACKFILL_KEY,)),
    TableAsset("market.ohlcv_1m", "1-minute candles per venue and symbol, built for closed minutes "
               "from the distinct trades by `feedhouse run` and the audit (read with FINAL).",
               "minute", ("venue",), deps=(AssetKey(["market", "trades"]),)),
    TableAsset("iot.readings", "Sensor readings from the MQTT feeds; one row per (device_id, sensor, "
               "device_ts, seq).", "device_ts", ("feed", "sensor")),
    TableAsset("ops.ingest_ledger", "What every pipeline stage counted, per feed and minute "
               "(read with sum() GROUP BY feed, minute).", "minute", ("feed",)),
    TableAsset("ops.dead_letter", "Messages that could not be parsed or stored, with the reason.",
               "received_ts", ("feed",)),
    TableAsset("ops.replay_log", "One row per buffer replay (feed x table); each finished replay "
               "is reconciled by the reconcile_replays job.", "finished_ts", ("status", "feed")),
    TableAsset("ops.feed_gaps", "Disconnects and sequence gaps per feed.", "gap_start", ("feed", "kind")),
    TableAsset("ops.quality_results", "Results of the data-quality suites (written by the "
               "data_quality job, whose great_expectations checks run after the reconciliation).",
               "checked_ts", ("suite",), deps=(RECON_KEY,)),
]
TABLE_KEYS = {t.table: t.key for t in TABLES}
TRADES_KEY = TABLE_KEYS["market.trades"]
QUOTES_KEY = TABLE_KEYS["market.quotes"]
READINGS_KEY = TABLE_KEYS["iot.readings"]


def observe_table(client, spec: TableAsset, now_s: float) -> ObserveResult:
    rows, newest_us = client.query(
        f"SELECT count(), toUnixTimestamp64Micro(toDateTime64(max({spec.event_ts}), 6)) "
        f"FROM {spec.table}"
    ).result_rows[0]
    metadata: dict[str, object] = {"dagster/row_count": MetadataValue.int(int(rows))}
    if rows:
        newest = newest_us / 1e6
        metadata["last_event_time"] = MetadataValue.timestamp(newest)
        metadata["lag_seconds"] = MetadataValue.float(round(now_s - newest, 3))
        for column in spec.by:
            counts = client.query(
                f"SELECT toString({column}) AS v, count() AS n FROM {spec.table} "
                "GROUP BY v ORDER BY n DESC LIMIT 50"
            ).result_rows
            table = "\n".join(f"| {v or '(none)'} | {n} |" for v, n in counts)
            metadata[f"rows_per_{column}"] = MetadataValue.md(f"| {column} | rows |\n|---|---|\n{table}")
    return ObserveResult(
        asset_key=spec.key,
        metadata=metadata,
        data_version=DataVersion(f"{rows}:{newest_us if rows else 0}"),
    )


def _observe_tables(context: AssetExecutionContext, warehouse: WarehouseResource):
    wanted = [t for t in TABLES if t.key in context.selected_asset_keys]
    now_s = time.time()
    with warehouse.open() as client:
        results = [observe_table(client, spec, now_s) for spec in wanted]
    yield from results


def _observable(name: str, tables: list[TableAsset]):
    with warnings.catch_warnings():  # multi_observable_source_asset is marked beta in 1.13
        warnings.simplefilter("ignore", BetaWarning)
        return multi_observable_source_asset(
            name=name,
            specs=[
                AssetSpec(t.key, description=t.description, group_name=t.group, owners=OWNERS,
                          kinds={"clickhouse"}, metadata={"table": t.table}, deps=t.deps)
                for t in tables
            ],
            can_subset=True,
        )(_observe_tables)


# Two ops: the tables the ingest writes (upstream of the audit) and the tables the
# verification writes downstream of the reconciliation (one op for both would depend on
# itself through the audit).
observe_tables = _observable(
    "observe_clickhouse_tables", [t for t in TABLES if RECON_KEY not in t.deps])
observe_results = _observable(
    "observe_verification_tables", [t for t in TABLES if RECON_KEY in t.deps])

ASSETS = [observe_tables, observe_results]
