"""Realistic rows for the quality and report tests, seeded straight into a chDB store.

Builders return dicts (one per row, column -> value) so a test can break exactly one
field of one row before inserting; `insert` writes any of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedhouse.core.config import load_settings
from feedhouse.core.settings import Settings
from feedhouse.store.migrations import init_schema
from quality.window import Window


def store_settings(tmp: Path, **overrides) -> Settings:
    """Settings for a fresh chDB store under tmp (the home's own store, so reports keep
    their plain names), schema applied."""
    settings = load_settings(
        None, home=str(tmp / "home"), reports_dir=str(tmp / "reports"), **overrides
    )
    init_schema(settings)
    return settings


def insert(client, table: str, rows: list[dict]) -> None:
    if rows:
        cols = list(rows[0])
        client.insert(table, [[r[c] for c in cols] for r in rows], column_names=cols)


def trades(
    start: datetime,
    n: int = 30,
    venue: str = "binance",
    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT"),
    step_s: float = 2.0,
    feed: str | None = None,
    lag_ms: int = 40,
) -> list[dict]:
    rows = []
    for i in range(n):
        ts = start + timedelta(seconds=i * step_s)
        symbol = symbols[i % len(symbols)]
        rows.append(
            {
                "venue": venue,
                "symbol": symbol,
                "native_symbol": symbol.replace("-", ""),
                "trade_id": str(int(start.timestamp()) * 1000 + i),
                "price": (64000.0 if symbol.startswith("BTC") else 3400.0) + i * 0.5,
                "amount": 0.01 + (i % 7) * 0.005,
                "side": ("buy", "sell")[i % 2],
                "exchange_ts": ts,
                "received_ts": ts + timedelta(milliseconds=lag_ms),
                "inserted_ts": ts + timedelta(milliseconds=lag_ms + 15),
                "feed": feed or f"{venue}-trades",
            }
        )
    return rows


def quotes(start: datetime, n: int = 20, venue: str = "binance") -> list[dict]:
    rows = []
    for i in range(n):
        ts = start + timedelta(seconds=i * 3)
        bid = 64000.0 + i
        rows.append(
            {
                "venue": venue,
                "symbol": "BTC-USDT",
                "native_symbol": "BTCUSDT",
                "bid_price": bid,
                "bid_size": 0.5 + i * 0.01,
                "ask_price": bid + 0.1,
                "ask_size": 0.7,
                "exchange_ts": ts,
                "received_ts": ts + timedelta(milliseconds=30),
                "feed": f"{venue}-trades",
            }
        )
    return rows


def book_updates(start: datetime, n: int = 6, venue: str = "okx") -> list[dict]:
    """A snapshot (3 bids below 3 asks) then `n` updates, one level each, ids in sequence:
    asks at the best ask (64001), bids between the best bid and it; the book stays uncrossed."""
    rows = []

    def level(ts, uid, prev, snap, side, price, amount):
        rows.append({"venue": venue, "symbol": "BTC-USDT", "native_symbol": "BTC-USDT",
                     "exchange_ts": ts, "received_ts": ts + timedelta(milliseconds=20),
                     "is_snapshot": snap, "side": side, "price": price, "amount": amount,
                     "update_id": uid, "prev_update_id": prev, "feed": f"{venue}-books"})

    for k in range(3):
        level(start, 100, 0, 1, "bid", 64000.0 - k, 1.0 + k)
        level(start, 100, 0, 1, "ask", 64001.0 + k, 1.0 + k)
    for i in range(n):
        ts = start + timedelta(seconds=1 + i)
        level(ts, 101 + i, 100 + i, 0, "bid" if i % 2 else "ask", 64001.0 - (i % 2) * 0.5, 0.1 * i)
    return rows


SENSOR_VALUES = {"temperature": ("C", 21.5), "humidity": ("%", 45.0), "pressure": ("hPa", 1013.0)}


def readings(start: datetime, n: int = 10, devices: int = 2) -> list[dict]:
    rows = []
    for d in range(devices):
        for sensor, (unit, base) in SENSOR_VALUES.items():
            for i in range(n):
                ts = start + timedelta(seconds=i * 5)
                rows.append(
                    {
                        "device_id": f"dev-{d:03d}",
                        "sensor": sensor,
                        "seq": i + 1,
                        "value": base + (i % 3) * 0.1,
                        "unit": unit,
                        "device_ts": ts,
                        "received_ts": ts + timedelta(milliseconds=80),
                        "inserted_ts": ts + timedelta(milliseconds=95),
                        "site": "plant-a",
                        "feed": "plant-mqtt",
                    }
                )
    return rows


def ledger(
    start: datetime, minutes: int = 3, feed: str = "binance-trades", per_minute: int = 30
) -> list[dict]:
    """Consistent counters: every invariant holds."""
    rows = []
    for m in range(minutes):
        parsed = per_minute
        rows.append(
            {
                "feed": feed,
                "minute": start + timedelta(minutes=m),
                "received": per_minute + 5,
                "with_records": per_minute,
                "invalid": 1,
                "ignored": 4,
                "parsed": parsed,
                "duplicates": 2,
                "inserted": parsed - 2,
                "rejected": 0,
                "buffered": 0,
                "replayed": 0,
            }
        )
    return rows


def outage(
    start: datetime,
    feed: str = "binance-trades",
    rows: int = 120,
    ok: bool = True,
    checked_after_s: int = 30,
):
    """A drilled outage: a disconnect gap, the replay of the buffer (its trades and, like
    the sink, its ledger rows, which carry no event time) and its reconciliation."""
    end = start + timedelta(seconds=20)
    replay_id = f"replay-{start:%Y%m%d-%H%M%S}"
    gap = {
        "feed": feed,
        "venue": "binance",
        "gap_start": start,
        "gap_end": end,
        "kind": "disconnect",
        "reason": "connection closed 1006",
        "missing": 0,
    }
    replay = {
        "replay_id": replay_id,
        "feed": feed,
        "table_name": "market.trades",
        "batches": 3,
        "rows": rows,
        "buffered_rows": rows,
        "first_event_ts": start,
        "last_event_ts": end,
        "started_ts": end + timedelta(seconds=1),
        "finished_ts": end + timedelta(seconds=2),
        "status": "finished",
        "error": "",
    }
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ledger_replay = dict(
        replay,
        table_name="ops.ingest_ledger",
        batches=1,
        rows=3,
        buffered_rows=3,
        first_event_ts=epoch,
        last_event_ts=epoch,
    )
    recon = {
        "replay_id": replay_id,
        "feed": feed,
        "checked_ts": end + timedelta(seconds=checked_after_s),
        "range_start": start,
        "range_end": end,
        "buffered_rows": rows + 3,
        "replayed_rows": rows + 3,
        "table_rows": rows if ok else rows - 3,
        "status": "ok" if ok else "failed",
        "explanation": "buffered = replayed = table rows" if ok else "3 rows missing",
        "bad_minutes": [] if ok else [start.replace(second=0, microsecond=0)],
    }
    return gap, [replay, ledger_replay], recon


def audits(start: datetime, minutes: int = 3, feed: str = "binance-trades", count: int = 28):
    return [
        {
            "audited_ts": start + timedelta(minutes=m + 2),
            "feed": feed,
            "table_name": "market.trades",
            "minute": start + timedelta(minutes=m),
            "ledger_count": count,
            "table_count": count,
            "difference": 0,
            "status": "ok",
        }
        for m in range(minutes)
    ]


def at(hour: int, day: str = "2026-11-20", minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=UTC)


def seed(settings: Settings, **tables: list[dict]) -> None:
    """seed(settings, market_trades=[...], ops_ingest_ledger=[...]) in one warehouse block."""
    from feedhouse.store.client import warehouse

    with warehouse(settings) as client:
        for name, rows in tables.items():
            insert(client, name.replace("_", ".", 1), rows)


def failed(run, suite: str) -> dict:
    """{expectation label: outcome} of the expectations of `suite` that failed."""
    return {o.expectation: o for o in run.suite(suite).failed}


def hour(h: int) -> Window:
    """A one-hour window of the test day: each test seeds its own hour."""
    return Window(at(h), at(h) + timedelta(hours=1))


NOW = at(23, minute=59)  # "now" for the checks: after every seeded hour
