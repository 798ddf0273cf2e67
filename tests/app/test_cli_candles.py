"""`feedhouse candles`: rebuild a day's candles from the distinct trades and prove them."""

from __future__ import annotations

import pytest

from feedhouse.store.client import warehouse
from tests.store.test_candles import per_minute, seed_twice, trades
from tests.support.cli import run_cli

pytestmark = pytest.mark.integration  # runs the feedhouse command as a subprocess


def test_candles_rebuilds_a_wrong_candle_and_proves_the_day(initialized) -> None:
    rows = trades()
    with warehouse(initialized) as client:
        seed_twice(client, rows)
        # no candle yet for minute 0, a candle counting minute 1 twice (as the old view did)
        client.command(
            "INSERT INTO market.ohlcv_1m (venue, symbol, minute, open, high, low, close, volume, "
            "notional, trades, built_ts) VALUES ('kraken', 'BTC-USD', "
            "toDateTime('2024-03-01 12:01:00', 'UTC'), 1, 1, 1, 1, 9, 9, 14, now64(6))")
    env = {"FEEDHOUSE_HOME": str(initialized.home)}

    done = run_cli("candles", "--start", "2024-03-01", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 minute(s) with trades rebuilt" in done.stdout
    assert "3 venue-symbol-minutes agree" in done.stdout
    with warehouse(initialized) as client:
        checked = per_minute(client)
    assert [(c[1], c[3]) for c in checked] == [(7, 7)] * 3
    assert all(c[2] == c[4] for c in checked)

    again = run_cli("candles", "--start", "2024-03-01", "--end", "2024-03-01", **env)
    assert again.returncode == 0 and "3 venue-symbol-minutes agree" in again.stdout

    backwards = run_cli("candles", "--start", "2024-03-02", "--end", "2024-03-01", **env)
    assert backwards.returncode == 2
    assert backwards.stderr.strip().splitlines() == ["error: --end 2024-03-01 is before --start 2024-03-02"]
