"""Candles (market.ohlcv_1m) built from distinct trades, proven by the audit, on real chDB."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

from feedhouse.app.drills.verdict import measure_trades
from feedhouse.core.paths import sql_dir
from feedhouse.store.candles import (
    CandleBuilder,
    PeriodicCandles,
    build_minutes,
    candle_mismatches,
    candle_totals,
    closed_cutoff,
)
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import apply_migrations
from feedhouse.verify.audit import run_audit, table_counts

COLUMNS = ["venue", "symbol", "native_symbol", "trade_id", "price", "amount", "side",
           "exchange_ts", "received_ts", "feed", "inserted_ts"]
BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
NOW_S = (BASE + timedelta(hours=1)).timestamp()  # every seeded minute is closed


def trades(minutes: int = 3, per_minute: int = 7, venue: str = "kraken") -> list[list]:
    rows = []
    for m in range(minutes):
        for k in range(per_minute):
            ts = BASE + timedelta(minutes=m, seconds=k * 8)
            price = 60_000.0 + m * 10 + (k % 4) - k * 0.5
            rows.append([venue, "BTC-USD", "XBT/USD", f"{m}-{k}", price, 0.013 * (k + 1), "buy",
                         ts, ts + timedelta(milliseconds=30), venue, ts + timedelta(seconds=1)])
    return rows


def ledger(rows: list[list]) -> list[list]:
    """Ledger rows saying every distinct trade was inserted once (per feed and minute)."""
    per: dict = {}
    for r in rows:
        key = (r[9], r[7].replace(second=0, microsecond=0))
        per[key] = per.get(key, 0) + 1
    return [[feed, minute, n, n] for (feed, minute), n in per.items()]


def seed_twice(client, rows: list[list]) -> None:
    """Each batch inserted twice under different tokens (a restart re-sends what the killed
    run inserted before its snapshot): ReplacingMergeTree collapses them, later."""
    for attempt in ("first", "after-restart"):
        client.insert("market.trades", rows, column_names=COLUMNS,
                      settings={"insert_deduplication_token": f"kraken:0:trades:{attempt}"})
    distinct = {(r[0], r[1], r[3]): r for r in rows}
    client.insert("ops.ingest_ledger", ledger(list(distinct.values())),
                  column_names=["feed", "minute", "parsed", "inserted"])


def per_minute(client) -> list[tuple]:
    return client.query(
        "SELECT c.minute, c.trades, round(c.volume, 9), t.n, round(t.vol, 9) FROM "
        "(SELECT minute, trades, volume FROM market.ohlcv_1m FINAL) AS c FULL JOIN "
        "(SELECT toStartOfMinute(exchange_ts) AS minute, count() AS n, sum(amount) AS vol "
        " FROM market.trades FINAL GROUP BY minute) AS t USING (minute) ORDER BY minute"
    ).result_rows


def test_trades_inserted_twice_give_exact_candles_and_the_audit_passes(initialized):
    rows = trades()
    with warehouse(initialized) as client:
        seed_twice(client, rows)
        assert client.query("SELECT count() FROM market.trades").result_rows == [(2 * len(rows),)]
        result = run_audit(client, now_s=NOW_S, kinds={"kraken": "exchange"})
        checked = per_minute(client)
        candle = client.query(
            "SELECT open, high, low, close, notional FROM market.ohlcv_1m FINAL "
            "ORDER BY minute LIMIT 1").result_rows[0]
        totals = candle_totals(client)
    # one candle per minute, counting each distinct trade once (the raw table holds 2 rows each)
    assert [(c[1], c[3]) for c in checked] == [(7, 7)] * 3
    assert all(c[2] == c[4] for c in checked)
    first = rows[:7]
    assert candle == (first[0][4], max(r[4] for r in first), min(r[4] for r in first),
                      first[-1][4], sum(r[4] * r[5] for r in first))
    assert totals["candle_trades"] == totals["distinct_trades"] == 21
    assert totals["candle_volume"] == totals["distinct_volume"]
    assert result.ok, [(m.feed, m.table_name, m.status) for m in result.bad]
    candles = [m for m in result.minutes if m.table_name == "market.ohlcv_1m"]
    assert [(m.feed, m.ledger_count, m.table_count, m.status) for m in candles] == [
        ("kraken/BTC-USD", 7, 7, "ok")] * 3


def test_rows_in_the_last_second_of_a_minute_count_in_that_minute(initialized):
    """chDB 26.9 skips a part whose rows all lie in the second before a bound when a
    DateTime64 column is compared with a DateTime (`exchange_ts < toDateTime(hi)`): a
    small insert at xx:59.4-59.997 went uncounted, failing the demo's reconciliation, and
    its trades would have been left out of their candle. Bounds are DateTime64 now."""
    late = [BASE + timedelta(seconds=59.4), BASE + timedelta(seconds=59.997)]
    quotes = [["okx", "BTC-USDT", "BTC-USDT", 60_000.0 + i, 1.0, 60_001.0 + i, 1.0, ts,
               ts + timedelta(milliseconds=5), "okx"] for i, ts in enumerate(late)]
    rows = trades(minutes=1, per_minute=3)
    for r, ts in zip(rows[1:], late, strict=True):  # two trades in the last second, alone
        r[7], r[8] = ts, ts + timedelta(milliseconds=30)
    lo = int(BASE.timestamp())
    with warehouse(initialized) as client:
        client.insert("market.quotes", quotes, column_names=[
            "venue", "symbol", "native_symbol", "bid_price", "bid_size", "ask_price",
            "ask_size", "exchange_ts", "received_ts", "feed"])
        for part in (rows[:1], rows[1:]):  # the late trades in a part of their own
            client.insert("market.trades", part, column_names=COLUMNS)
        client.insert("ops.ingest_ledger", ledger(rows),
                      column_names=["feed", "minute", "parsed", "inserted"])
        counts = table_counts(client, lo, lo + 60)
        result = run_audit(client, now_s=NOW_S, kinds={"kraken": "exchange"})
    assert counts[("okx", lo)] == {"market.quotes": 2}
    assert counts[("kraken", lo)] == {"market.trades": 3}
    candles = [(m.ledger_count, m.table_count) for m in result.minutes
               if m.table_name == "market.ohlcv_1m"]
    assert candles == [(3, 3)]  # the candle holds the late trades too


def test_a_tampered_candle_fails_the_audit(initialized):
    rows = trades()
    with warehouse(initialized) as client:
        seed_twice(client, rows)
        assert run_audit(client, now_s=NOW_S).ok
        # a newer build of minute 1 that counted trades twice (what the old view did)
        client.command(
            "INSERT INTO market.ohlcv_1m SELECT venue, symbol, minute, open, high, low, close, "
            "volume * 2, notional * 2, trades * 2, now64(6) FROM market.ohlcv_1m FINAL "
            "WHERE minute = toDateTime('2024-03-01 12:01:00', 'UTC')")
        # and minute 2 with the right count but a wrong volume
        client.command(
            "INSERT INTO market.ohlcv_1m SELECT venue, symbol, minute, open, high, low, close, "
            "volume + 0.5, notional, trades, now64(6) FROM market.ohlcv_1m FINAL "
            "WHERE minute = toDateTime('2024-03-01 12:02:00', 'UTC')")
        result = run_audit(client, now_s=NOW_S + 60, full=True)
        latest = client.query(
            "SELECT feed, toString(minute), argMax(status, audited_ts), "
            "argMax(difference, audited_ts) FROM ops.row_count_audit "
            "WHERE table_name = 'market.ohlcv_1m' GROUP BY feed, minute ORDER BY minute"
        ).result_rows
        bad = candle_mismatches(client)
    assert not result.ok
    assert [(m.feed, m.minute.minute, m.status) for m in result.bad] == [
        ("kraken/BTC-USD", 1, "extra"), ("kraken/BTC-USD", 2, "volume")]
    assert latest == [("kraken/BTC-USD", "2024-03-01 12:00:00", "ok", 0),
                      ("kraken/BTC-USD", "2024-03-01 12:01:00", "extra", 7),
                      ("kraken/BTC-USD", "2024-03-01 12:02:00", "volume", 0)]
    assert [(c.minute % 3600 // 60, c.status) for c in bad] == [(1, "extra"), (2, "volume")]


def test_late_trades_rebuild_their_minute_and_a_rebuild_replaces_it(initialized):
    rows = trades(minutes=2)
    with warehouse(initialized) as client:
        client.insert("market.trades", rows, column_names=COLUMNS)
        builder = CandleBuilder(settle_s=0)  # (one process: no insert in flight to wait for)
        # at 12:01:03 only minute 12:00 is closed (5 s lateness); 12:01 is not built yet
        first = builder.build_due(client, now_s=(BASE + timedelta(seconds=63)).timestamp() + 2)
        assert first.minutes == 1
        assert [(c[1], c[3]) for c in per_minute(client)] == [(7, 7), (None, 7)] or \
            [(c[1], c[3]) for c in per_minute(client)] == [(7, 7), (0, 7)]
        # a late trade of minute 12:00 arrives (inserted now), then 12:01 closes
        late = trades(minutes=1, per_minute=1)[0]
        late[3], late[7] = "late-1", BASE + timedelta(seconds=59)
        late[10] = datetime.now(UTC)  # stored after minute 12:00 was built
        client.insert("market.trades", [late], column_names=COLUMNS)
        second = builder.build_due(client, now_s=(BASE + timedelta(seconds=130)).timestamp())
        assert second.minutes == 2  # 12:00 again (new trade) and 12:01 (closed)
        # building the same minutes again changes nothing the reader sees
        build_minutes(client, [int(BASE.timestamp()), int(BASE.timestamp()) + 60])
        # later builds find nothing new: every trade is older than its minute's candle
        third = builder.build_due(client, now_s=(BASE + timedelta(seconds=200)).timestamp())
        fourth = builder.build_due(client, now_s=(BASE + timedelta(seconds=300)).timestamp())
        checked = per_minute(client)
        raw = client.query("SELECT count() FROM market.ohlcv_1m").result_rows[0][0]
        final = client.query("SELECT count() FROM market.ohlcv_1m FINAL").result_rows[0][0]
        assert candle_mismatches(client) == []
    assert (third.minutes, fourth.minutes) == (0, 0)
    assert [(c[1], c[3]) for c in checked] == [(8, 8), (7, 7)]
    assert final == 2 and raw >= 4  # every build inserted a row; FINAL shows the newest


def test_a_fresh_builder_resumes_from_the_store(initialized):
    rows = trades(minutes=3)
    with warehouse(initialized) as client:
        client.insert("market.trades", rows, column_names=COLUMNS)
        assert CandleBuilder().build_due(client, now_s=NOW_S).minutes == 3
        # a new process (the audit, a restarted run): nothing is due again
        assert CandleBuilder().build_due(client, now_s=NOW_S + 30).minutes == 0
    assert closed_cutoff(125.0, 5.0) == 120 and closed_cutoff(124.9, 5.0) == 60


def test_migration_008_drops_the_view_and_rebuilds_candles_from_distinct_trades(settings, tmp_path):
    """A store made before 008 (candles fed by the materialized view) is moved."""
    old = tmp_path / "migrations"
    old.mkdir()
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        if int(path.name[:3]) < 8:
            shutil.copy(path, old / path.name)
    rows = trades()
    with warehouse(settings) as client:
        apply_migrations(client, old)
        for attempt in ("a", "b"):  # inserted twice: the view sums both
            client.insert("market.trades", rows, column_names=COLUMNS,
                          settings={"insert_deduplication_token": attempt})
        before = client.query("SELECT sum(trades) FROM market.ohlcv_1m").result_rows[0][0]
        applied = apply_migrations(client)
        views = client.query("SELECT count() FROM system.tables WHERE database = 'market' "
                             "AND name = 'ohlcv_1m_mv'").result_rows[0][0]
        engine = client.query("SELECT engine FROM system.tables WHERE database = 'market' "
                              "AND name = 'ohlcv_1m'").result_rows[0][0]
        checked = per_minute(client)
        # new inserts no longer reach the candles on the insert path
        client.insert("market.trades", trades(minutes=1, per_minute=1, venue="bitstamp"),
                      column_names=COLUMNS)
        after_insert = client.query("SELECT sum(trades) FROM market.ohlcv_1m FINAL").result_rows[0][0]
    assert before == 2 * len(rows)  # what the view did
    assert applied[0] == "008_candles_from_distinct_trades.sql"
    assert views == 0 and engine == "ReplacingMergeTree"
    assert [(c[1], c[3]) for c in checked] == [(7, 7)] * 3
    assert after_insert == len(rows)


def test_the_crash_drills_verdict_fails_when_candles_disagree_with_their_trades(initialized):

    rows = trades()
    sent = {"trades_sent": 2 * len(rows), "unique_trades_sent": len(rows)}
    with warehouse(initialized) as client:
        seed_twice(client, rows)
        build_minutes(client, {int(r[7].timestamp()) // 60 * 60 for r in rows})
    clean = measure_trades(initialized, sent, {"kraken": len(rows)}, candles_before=int(NOW_S))
    with warehouse(initialized) as client:
        client.command(  # minute 0's candle as the old view left it: both inserts summed
            "INSERT INTO market.ohlcv_1m SELECT venue, symbol, minute, open, high, low, close, "
            "volume * 2, notional * 2, trades * 2, now64(6) FROM market.ohlcv_1m FINAL "
            "WHERE minute = toDateTime('2024-03-01 12:00:00', 'UTC')")
    tampered = measure_trades(initialized, sent, {"kraken": len(rows)}, candles_before=int(NOW_S))
    assert clean["ok"] is True, clean
    assert clean["candles"] == {"minutes": 3, "candle_trades": 21, "distinct_trades": 21,
                                "candle_volume": clean["candles"]["distinct_volume"],
                                "distinct_volume": clean["candles"]["distinct_volume"],
                                "bad_minutes": 0}
    assert tampered["ok"] is False and tampered["candles"]["bad_minutes"] == 1
    assert tampered["candle_bad_minutes"] == [
        ("kraken", "BTC-USD", int(BASE.timestamp()), "extra", 14, 7)]


def test_the_run_step_builds_each_period_forced_at_stop_and_survives_an_outage(initialized):

    rows = trades(minutes=2)
    with warehouse(initialized) as client:
        client.insert("market.trades", rows, column_names=COLUMNS)
        step = PeriodicCandles(every_s=30.0)
        first = step.maybe_build(lambda: client)
        assert first is not None and first.minutes == 2  # the recorded minutes are closed
        assert step.maybe_build(lambda: client) is None  # not due yet
        late = trades(minutes=1, per_minute=1)[0]
        late[3], late[10] = "late-2", datetime.now(UTC)  # a late trade of 12:00, stored now
        client.insert("market.trades", [late], column_names=COLUMNS)
        assert step.maybe_build(lambda: client, force=True).minutes == 1  # at stop: now

        def unreachable():
            raise ConnectionError("ClickHouse unreachable")

        assert PeriodicCandles(every_s=30.0).maybe_build(unreachable) is None  # logged only
        assert PeriodicCandles(every_s=0).maybe_build(lambda: client) is None  # switched off
        assert candle_mismatches(client) == []
