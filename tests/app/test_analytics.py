"""Every query in sql/analytics/ against a seeded chDB store, checked against values
computed by hand in Python from the same seed data."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from feedhouse.app import analytics
from feedhouse.app.cli.output import shown, tidy
from feedhouse.core.config import load_settings
from feedhouse.core.errors import InputError
from feedhouse.store.candles import build_minutes
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import init_schema
from tests.support.cli import run_cli

T0 = 1_704_067_200_000_000  # 2024-01-01 00:00:00 UTC in µs
S = 1_000_000
VENUES = ("binance", "coinbase", "kraken")
SYMBOLS = {"BTC-USDT": 42_000.0, "ETH-USDT": 2_300.0}
TRADE_COLUMNS = [
    "venue",
    "symbol",
    "native_symbol",
    "trade_id",
    "price",
    "amount",
    "side",
    "exchange_ts",
    "received_ts",
]


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / S, tz=UTC)


def _trades() -> list[tuple]:
    """3 venues x 2 symbols x 3 minutes, prices differ per venue so dispersion is visible."""
    rows = []
    for v, venue in enumerate(VENUES):
        for symbol, base in SYMBOLS.items():
            for minute in range(3):
                for k in range(5):
                    ts = T0 + minute * 60 * S + (k * 11 + v) * S
                    price = base * (1 + 0.001 * v) + minute * 3 + (k % 3) - 1
                    amount = 0.1 * (k + 1)
                    rows.append(
                        (
                            venue,
                            symbol,
                            symbol.replace("-", ""),
                            f"{venue}-{symbol}-{minute}-{k}",
                            price,
                            amount,
                            "buy" if k % 2 else "sell",
                            ts,
                            ts + 2_000,
                        )
                    )
    # A burst: 10 trades inside one second on binance BTC-USDT (minute 1, second 30).
    for k in range(10):
        ts = T0 + 90 * S + k * 50_000
        rows.append(
            ("binance", "BTC-USDT", "BTCUSDT", f"burst-{k}", 42_050.0, 0.01, "buy", ts, ts + 1_000)
        )
    return rows


def _quotes() -> list[tuple]:
    rows = []
    for i, (bid, ask) in enumerate(
        [(100.0, 100.1), (100.0, 100.2), (100.0, 100.05), (100.0, 100.0), (100.0, 100.3)]
    ):
        ts = T0 + i * S
        rows.append(("coinbase", "BTC-USDT", "BTC-USDT", bid, 1.0, ask, 2.0, ts, ts))
    return rows


D1_VALUES = [20.0, 20.2, 19.8, 20.1, 19.9, 20.0, 35.0, 20.1]  # one spike at index 6


def _readings(now_us: int) -> list[tuple]:
    """Relative to `now_us`, taken when the store is seeded: the query measures silence
    against now(), and a clock read at import would be minutes old in a long test run."""
    rows = []
    seqs = [1, 2, 3, 5, 6, 7, 8, 9]  # seq 4 is missing
    for i, (seq, value) in enumerate(zip(seqs, D1_VALUES, strict=True)):
        ts = now_us - (len(D1_VALUES) - i) * 5 * S
        rows.append(("d1", "temperature", seq, value, "C", ts, ts + 30_000, "site-a"))
    for i in range(3):  # d2 went quiet 30 minutes ago
        ts = now_us - 1800 * S - (3 - i) * 5 * S
        rows.append(("d2", "humidity", i + 1, 40.0 + i, "%", ts, ts + 10_000, "site-b"))
    return rows


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("analytics")
    settings = load_settings(home=str(home), reports_dir=str(home / "reports"))
    init_schema(settings)
    trades = _trades()
    with warehouse(settings) as client:
        conv = [tuple(_dt(x) if i in (7, 8) else x for i, x in enumerate(r)) for r in trades]
        # Later inserts carry earlier trades of the same minutes: open/close come from
        # event time, not insert order.
        client.insert("market.trades", conv[1::2], column_names=TRADE_COLUMNS)
        client.insert("market.trades", conv[0::2], column_names=TRADE_COLUMNS)
        # A duplicate (same key) slipping past dedup must not weigh twice in VWAP.
        client.insert("market.trades", conv[:1], column_names=TRADE_COLUMNS)
        client.insert(
            "market.quotes",
            [r[:7] + (_dt(r[7]), _dt(r[8])) for r in _quotes()],
            column_names=[
                "venue",
                "symbol",
                "native_symbol",
                "bid_price",
                "bid_size",
                "ask_price",
                "ask_size",
                "exchange_ts",
                "received_ts",
            ],
        )
        client.insert(
            "iot.readings",
            [r[:5] + (_dt(r[5]), _dt(r[6]), r[7]) for r in _readings(int(time.time() * S))],
            column_names=[
                "device_id",
                "sensor",
                "seq",
                "value",
                "unit",
                "device_ts",
                "received_ts",
                "site",
            ],
        )
        build_minutes(client, {(t[7] // (60 * S)) * 60 for t in trades})
    return settings, trades


def _run(settings, name, **params):
    with warehouse(settings) as client:
        columns, rows = analytics.run(client, name, {k: str(v) for k, v in params.items()})
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _by_key(trades):
    groups = defaultdict(list)
    for t in trades:
        groups[(t[0], t[1])].append(t)
    return groups


def test_catalog_lists_every_file_with_a_question():
    queries = analytics.catalog()
    assert set(queries) == {
        "ohlcv_1m",
        "vwap",
        "price_dispersion",
        "trade_rate",
        "spread_stats",
        "sensor_rolling",
        "device_health",
        "book_at",
        "depth",
        "book_health",
    }
    for query in queries.values():
        assert query.question.endswith("?"), query.name
        for p in query.params:
            assert f"{{{p.name}:{p.type}}}" in query.sql, (query.name, p.name)


def test_ohlcv_candles_from_distinct_trades(store):
    settings, trades = store
    rows = _run(settings, "ohlcv_1m")
    assert len(rows) == 3 * 2 * 3
    minutes = defaultdict(list)
    for t in trades:
        minutes[(t[0], t[1], (t[7] - T0) // (60 * S))].append(t)
    for row in rows:
        minute = (int(row["minute"].replace(tzinfo=UTC).timestamp() * S) - T0) // (60 * S)
        group = sorted(minutes[(row["venue"], row["symbol"], minute)], key=lambda t: t[7])
        assert row["open"] == group[0][4]
        assert row["close"] == group[-1][4]
        assert row["high"] == max(t[4] for t in group)
        assert row["low"] == min(t[4] for t in group)
        assert row["trades"] == len(group)  # the duplicate of trades[0] counts once


def test_vwap_matches_hand_computed_value(store):
    settings, trades = store
    rows = {(r["venue"], r["symbol"]): r for r in _run(settings, "vwap")}
    assert len(rows) == 6
    for key, group in _by_key(trades).items():
        expected = sum(t[4] * t[5] for t in group) / sum(t[5] for t in group)
        assert rows[key]["vwap"] == pytest.approx(expected, rel=1e-12)
        assert rows[key]["trades"] == len(group)  # the duplicate is collapsed by FINAL
    # Window: only the last minute (from the newest trade) counts when asked.
    last = {(r["venue"], r["symbol"]): r for r in _run(settings, "vwap", window_minutes=1)}
    assert last[("kraken", "ETH-USDT")]["trades"] == 5


def test_price_dispersion_across_venues(store):
    settings, trades = store
    rows = _run(settings, "price_dispersion")
    assert len(rows) == 2 * 3
    for row in rows:
        assert row["venues"] == 3
        minute = (int(row["minute"].replace(tzinfo=UTC).timestamp() * S) - T0) // (60 * S)
        closes = {}
        for t in trades:
            if t[1] == row["symbol"] and (t[7] - T0) // (60 * S) == minute:
                if t[0] not in closes or t[7] > closes[t[0]][0]:
                    closes[t[0]] = (t[7], t[4])
        prices = [p for _, p in closes.values()]
        assert row["range_abs"] == pytest.approx(max(prices) - min(prices))
        mean = sum(prices) / 3
        assert row["range_bps"] == pytest.approx((max(prices) - min(prices)) / mean * 1e4)
        assert row["highest_venue"] == max(closes, key=lambda v: closes[v][1])
        assert row["lowest_venue"] == min(closes, key=lambda v: closes[v][1])
    assert _run(settings, "price_dispersion", min_venues=4) == []


def test_trade_rate_and_burstiness(store):
    settings, trades = store
    rows = {(r["venue"], r["symbol"]): r for r in _run(settings, "trade_rate")}
    burst = rows[("binance", "BTC-USDT")]
    calm = rows[("binance", "ETH-USDT")]
    group = _by_key(trades)[("binance", "BTC-USDT")]
    per_second = defaultdict(int)
    for t in group:
        per_second[t[7] // S] += 1
    span = max(per_second) - min(per_second) + 1
    mean = len(group) / span
    sd = math.sqrt(sum(n * n for n in per_second.values()) / span - mean * mean)
    assert burst["trades"] == len(group) and burst["span_s"] == span
    assert burst["peak_per_s"] == 10
    assert burst["mean_per_s"] == pytest.approx(mean, abs=1e-4)
    assert burst["cv_per_s"] == pytest.approx(sd / mean, abs=1e-4)
    assert calm["peak_per_s"] == 1
    assert burst["burstiness"] > calm["burstiness"]
    assert burst["peak_to_mean"] > calm["peak_to_mean"]


def test_spread_statistics_in_bps(store):
    settings, _ = store
    (row,) = _run(settings, "spread_stats")
    assert (row["quotes"], row["crossed_or_locked"], row["valid"]) == (5, 1, 4)
    spreads = [0.1, 0.2, 0.05, 0.3]
    bps = sorted(s / (100 + s / 2) * 1e4 for s in spreads)
    assert row["mean_spread"] == pytest.approx(sum(spreads) / 4)
    assert row["min_spread"] == pytest.approx(0.05) and row["max_spread"] == pytest.approx(0.3)
    assert row["mean_bps"] == pytest.approx(sum(bps) / 4)
    assert row["bps_p50_p90_p99"][2] == pytest.approx(bps[-1], rel=0.05)


def test_sensor_rolling_stats_and_anomalies(store):
    settings, _ = store
    rows = {r["device_id"]: r for r in _run(settings, "sensor_rolling", window_rows=3)}
    d1 = rows["d1"]
    last3 = D1_VALUES[-3:]
    mean = sum(last3) / 3
    assert d1["readings"] == len(D1_VALUES)
    assert d1["last_value"] == D1_VALUES[-1]
    assert d1["moving_avg"] == pytest.approx(mean, abs=1e-6)
    assert d1["moving_stddev"] == pytest.approx(
        math.sqrt(sum((v - mean) ** 2 for v in last3) / 3), abs=1e-6
    )
    assert d1["anomalies"] == 1  # the 35.0 spike, against the three readings before it
    assert rows["d2"]["anomalies"] == 0


def test_device_health_reports_the_silent_device(store):
    settings, _ = store
    rows = {r["device_id"]: r for r in _run(settings, "device_health")}
    assert rows["d2"]["status"] == "silent" and rows["d2"]["silent_for_s"] > 1700
    assert rows["d1"]["status"] == "ok"
    assert rows["d1"]["missing_by_seq"] == 1 and rows["d2"]["missing_by_seq"] == 0
    assert rows["d1"]["readings"] == 8 and rows["d1"]["mean_delay_s"] == pytest.approx(0.03)
    # silent devices sort first; a longer threshold makes d2 ok again
    assert next(iter(rows)) == "d2"
    relaxed = _run(settings, "device_health", silent_minutes=60)
    assert {r["status"] for r in relaxed} == {"ok"}


def test_bad_parameters_are_user_errors():
    query = analytics.get("vwap")
    with pytest.raises(InputError, match="window_minutes"):
        query.parameters({"window_minutes": "1; DROP TABLE x"})
    with pytest.raises(InputError, match="unknown parameter"):
        query.parameters({"nope": "1"})
    with pytest.raises(InputError, match="no analytics query"):
        analytics.get("../../etc/passwd")


@pytest.mark.integration
def test_cli_runs_a_query_and_lists_them(store):
    settings, trades = store
    out = run_cli("analytics", "vwap", "--format", "json", FEEDHOUSE_HOME=str(settings.home))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 6 and {"venue", "symbol", "vwap"} <= set(rows[0])
    listing = run_cli("analytics", FEEDHOUSE_HOME=str(settings.home))
    assert listing.returncode == 0 and "device_health" in listing.stdout
    bad = run_cli("analytics", "vwap", "-p", "window_minutes=x", FEEDHOUSE_HOME=str(settings.home))
    assert bad.returncode == 2 and "window_minutes" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.integration
def test_piped_table_shows_whole_cells_and_tidy_floats(store):
    """`feedhouse analytics vwap | cat`: stdout is a pipe (run_cli), no cell is cut to
    `binan…`, and floats carry no noise (`9480.22`, not `9480.219999999992`)."""
    settings, trades = store
    env = {"FEEDHOUSE_HOME": str(settings.home)}
    as_json = run_cli("analytics", "vwap", "--format", "json", **env)
    piped = run_cli("analytics", "vwap", **env)
    assert piped.returncode == 0, piped.stderr
    assert "…" not in piped.stdout
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    for row in rows:
        # every float in JSON has at most 10 significant digits
        for key in ("volume", "vwap", "avg_price", "last_price"):
            digits = repr(row[key]).replace(".", "").replace("-", "").lstrip("0")
            assert len(digits.split("e")[0]) <= 10, (key, row[key])
        line = next(li for li in piped.stdout.splitlines()
                    if f" {row['venue']} " in li and f" {row['symbol']} " in li)
        assert f" {row['first_trade']} " in line, line  # the whole timestamp
        assert f" {row['volume']:g} " in line and str(row["trades"]) in line, line
    vwaps = {(r["venue"], r["symbol"]): r["vwap"] for r in rows}
    for (venue, symbol), group in _by_key(trades).items():
        expected = sum(t[4] * t[5] for t in group) / sum(t[5] for t in group)
        assert vwaps[(venue, symbol)] == pytest.approx(expected, rel=1e-9)
    exact = run_cli("sql", "SELECT 0.1 + 0.2 AS x", "--format", "json", **env)
    assert json.loads(exact.stdout)["x"] == 0.1 + 0.2  # `sql` json keeps every digit
    shown = run_cli("sql", "SELECT 0.1 + 0.2 AS x, 1e-5 - 4e-19 AS y", **env)
    assert " 0.3 " in shown.stdout and " 0.00001 " in shown.stdout, shown.stdout


@pytest.mark.integration
def test_sql_error_in_an_analytics_query_exits_2(store, tmp_path):
    settings, _ = store
    out = run_cli("sql", "SELECT nope FROM market.trades", FEEDHOUSE_HOME=str(settings.home))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: Code: 47. DB::Exception: Unknown expression identifier `nope`. "
        "In scope SELECT nope FROM market.trades. (UNKNOWN_IDENTIFIER)"
    ]


def test_cells_show_floats_without_noise_and_whole():

    assert shown(9480.219999999992) == "9480.22"
    assert shown(9.999999999999593e-06) == "0.00001"
    assert shown(42003.5) == "42003.5" and shown(3.0) == "3" and shown(0.0) == "0"
    assert shown(1.2345678901234e-9) == "0.00000000123456789" and shown(-0.5) == "-0.5"
    assert shown([5.772005772007539, 11.534025374855354]) == "[5.772005772, 11.53402537]"
    assert tidy([0.1 + 0.2, "x", 7]) == [0.3, "x", 7]
    assert shown(None) == "" and shown(float("nan")) == "nan"
