"""Seed a store as a clean pipeline run would leave it (for the audit/reconcile/backfill tests).

Two feeds: `binance-live` (exchange, trades) and `plant` (mqtt, readings), three minutes
each, every row counted in the ledger; plus one buffer replay of `binance-live` covering
minute 2: its rows were buffered during an outage and replayed (inserted_ts inside the
replay window), counted as buffered, replayed and inserted, and logged in ops.replay_log.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from feedhouse.store.client import warehouse
from feedhouse.store.ledger import COUNTERS, LEDGER_COLUMNS

BASE = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
TRADE_FEED = "binance-live"
READING_FEED = "plant"
REPLAY_ID = "replay-0001"
MINUTES = 3
PER_MINUTE = 5
REPLAYED = 6  # rows of minute 2 that came through the buffer
TRADE_COLS = [
    "venue",
    "symbol",
    "native_symbol",
    "trade_id",
    "price",
    "amount",
    "side",
    "exchange_ts",
    "received_ts",
    "inserted_ts",
    "feed",
]
READING_COLS = [
    "device_id",
    "sensor",
    "seq",
    "value",
    "unit",
    "device_ts",
    "received_ts",
    "inserted_ts",
    "feed",
]
KINDS = {TRADE_FEED: "exchange", READING_FEED: "mqtt"}


def minute(i: int) -> datetime:
    return BASE + timedelta(minutes=i)


def trade_row(
    i: int, ts: datetime, inserted: datetime, feed: str = TRADE_FEED, venue: str = "binance"
):
    return [
        venue,
        "BTC-USDT",
        "BTCUSDT",
        str(1000 + i),
        42000.0 + i,
        0.01,
        "buy",
        ts,
        ts + timedelta(milliseconds=40),
        inserted,
        feed,
    ]


def ledger_row(feed: str, at: datetime, **counts: int) -> list:
    return [feed, at, *(counts.get(c, 0) for c in COUNTERS)]


def seed_clean(settings) -> dict:
    """Fill the (initialized) store; returns what was seeded."""
    trades, readings, ledger = [], [], []
    n = 0
    for m in range(MINUTES):
        direct = PER_MINUTE if m != 2 else 4  # minute 2 also gets the REPLAYED rows
        for k in range(direct):
            ts = minute(m) + timedelta(seconds=k * 5)
            trades.append(trade_row(n, ts, ts + timedelta(milliseconds=500)))
            n += 1
        ledger.append(ledger_row(TRADE_FEED, minute(m), parsed=direct, inserted=direct))
        for k in range(4):
            ts = minute(m) + timedelta(seconds=k * 10)
            readings.append(
                [
                    "dev-1",
                    "temperature",
                    m * 4 + k,
                    21.5,
                    "C",
                    ts,
                    ts + timedelta(milliseconds=20),
                    ts + timedelta(seconds=1),
                    READING_FEED,
                ]
            )
        ledger.append(ledger_row(READING_FEED, minute(m), parsed=4, inserted=4))
    # The replay: REPLAYED rows of minute 2, stored 5 minutes later by the buffer replay.
    started = minute(7)
    finished = started + timedelta(seconds=2)
    first_ts = minute(2) + timedelta(seconds=30)
    for k in range(REPLAYED):
        ts = first_ts + timedelta(seconds=k)
        trades.append(trade_row(n, ts, started + timedelta(milliseconds=100 + k)))
        n += 1
    last_ts = first_ts + timedelta(seconds=REPLAYED - 1)
    ledger.append(
        ledger_row(
            TRADE_FEED,
            minute(2),
            parsed=REPLAYED,
            buffered=REPLAYED,
            replayed=REPLAYED,
            inserted=REPLAYED,
        )
    )
    replay = [
        REPLAY_ID,
        TRADE_FEED,
        "market.trades",
        1,
        REPLAYED,
        REPLAYED,
        first_ts,
        last_ts,
        started,
        finished,
        "finished",
        "",
    ]
    with warehouse(settings) as client:
        client.insert("market.trades", trades, column_names=TRADE_COLS)
        client.insert("iot.readings", readings, column_names=READING_COLS)
        client.insert("ops.ingest_ledger", ledger, column_names=LEDGER_COLUMNS)
        client.insert("ops.replay_log", [replay], column_names=REPLAY_COLS)
    return {"trades": len(trades), "readings": len(readings), "replay_range": (first_ts, last_ts)}


REPLAY_COLS = [
    "replay_id",
    "feed",
    "table_name",
    "batches",
    "rows",
    "buffered_rows",
    "first_event_ts",
    "last_event_ts",
    "started_ts",
    "finished_ts",
    "status",
    "error",
]


def add_replay(
    settings,
    replay_id: str,
    at_minute: int,
    rows: int,
    *,
    feed: str = TRADE_FEED,
    first_id: int = 5000,
    started: datetime | None = None,
) -> None:
    """Another finished replay of `rows` trades in minute `at_minute`, fully stored."""
    started = started or minute(20 + at_minute)
    first_ts = minute(at_minute) + timedelta(seconds=1)
    trades = [
        trade_row(
            first_id + k,
            first_ts + timedelta(milliseconds=k),
            started + timedelta(milliseconds=50),
            feed,
        )
        for k in range(rows)
    ]
    with warehouse(settings) as client:
        client.insert("market.trades", trades, column_names=TRADE_COLS)
        client.insert(
            "ops.ingest_ledger",
            [
                ledger_row(
                    feed,
                    minute(at_minute),
                    parsed=rows,
                    buffered=rows,
                    replayed=rows,
                    inserted=rows,
                )
            ],
            column_names=LEDGER_COLUMNS,
        )
        client.insert(
            "ops.replay_log",
            [
                [
                    replay_id,
                    feed,
                    "market.trades",
                    1,
                    rows,
                    rows,
                    first_ts,
                    first_ts + timedelta(milliseconds=rows - 1),
                    started,
                    started + timedelta(seconds=1),
                    "finished",
                    "",
                ]
            ],
            column_names=REPLAY_COLS,
        )


FEEDS_YAML = """\
feeds:
  - name: binance-live
    kind: exchange
    venue: binance
  - name: plant
    kind: mqtt
"""


@pytest.fixture
def dagster_env(initialized, tmp_path, monkeypatch):
    """The initialized store as the Dagster resources and the CLI see it: settings from env
    (FEEDHOUSE_HOME + a config naming the feeds), DAGSTER_HOME in tmp_path."""
    for name in [n for n in os.environ if n.startswith("FEEDHOUSE_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "feedhouse.yaml"
    config.write_text(FEEDS_YAML)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    monkeypatch.setenv("FEEDHOUSE_HOME", str(initialized.home))
    monkeypatch.setenv("FEEDHOUSE_CONFIG", str(config))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    return initialized


@pytest.fixture
def seeded(dagster_env):
    seed_clean(dagster_env)
    return dagster_env


def query(settings, sql: str) -> list[tuple]:
    with warehouse(settings) as client:
        return client.query(sql).result_rows


def command(settings, sql: str) -> None:
    with warehouse(settings) as client:
        client.command(sql)


def cli_env() -> dict[str, str]:
    """FEEDHOUSE_*/DAGSTER_* of this test, for `run_cli` (which starts from a clean env)."""
    return {k: v for k, v in os.environ.items() if k.startswith(("FEEDHOUSE_", "DAGSTER_"))}
