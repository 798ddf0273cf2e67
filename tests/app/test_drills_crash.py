"""Drills `crash` and `buffer-crash` at reduced size, through the `feedhouse` command."""

from __future__ import annotations

import pytest

from feedhouse.app.drills.verdict import trade_figures
from tests.support.cli import run_drill

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def test_verdict_counts_a_trade_stored_under_a_second_key_as_a_duplicate():
    sent = {"BYBIT": 100, "KRAKEN": 50}
    clean = trade_figures(sent, {"BYBIT": 100, "KRAKEN": 50}, {"BYBIT": 100, "KRAKEN": 50},
                          {"BYBIT": 130, "KRAKEN": 50})
    assert clean == {"found": 150, "lost": 0, "duplicates_stored": 0, "duplicates_inserted": 30,
                     "ok": True}
    # re-sent rows merged away by ReplacingMergeTree are not stored duplicates; one BYBIT
    # trade stored again under another trade_id (or symbol) survives the merge: it is
    second_key = trade_figures(sent, {"BYBIT": 101, "KRAKEN": 50}, {"BYBIT": 101, "KRAKEN": 50})
    assert second_key["duplicates_stored"] == 1 and second_key["lost"] == 0
    assert second_key["ok"] is False
    # a surplus in one venue does not hide a loss in another
    masked = trade_figures(sent, {"BYBIT": 101, "KRAKEN": 49}, {"BYBIT": 101, "KRAKEN": 49})
    assert masked["duplicates_stored"] == 1 and masked["lost"] == 1 and not masked["ok"]
    # rows of one key the merge did not remove are duplicates too
    unmerged = trade_figures(sent, {"BYBIT": 102, "KRAKEN": 50}, {"BYBIT": 100, "KRAKEN": 50})
    assert unmerged["duplicates_stored"] == 2 and not unmerged["ok"]
    # a sink rejection (dead-lettered) is not a loss
    assert trade_figures(sent, {"BYBIT": 99, "KRAKEN": 50}, {"BYBIT": 99, "KRAKEN": 50},
                         rejected={"BYBIT": 1})["lost"] == 0


def test_crash_drill_sigkills_at_load_and_loses_nothing(tmp_path):
    verdict = run_drill("crash", "--seconds", "6", "--kills", "1", "--store",
                        str(tmp_path / "crash"))
    assert verdict["kills"] == verdict["killed_while_ingesting"] == 1
    assert verdict["lost"] == 0 and verdict["duplicates_stored"] == 0
    # the user's view: count() = count() FINAL = every unique trade sent
    assert verdict["stored"] == verdict["final_rows"] == verdict["unique_sent"] > 0
    assert verdict["ledger_ok"] is True and verdict["peak_rss_mb"] > 0
    # the candles count every distinct trade once, per minute, though rows were re-inserted
    candles = verdict["candles"]
    assert candles["bad_minutes"] == 0 and candles["minutes"] > 0
    assert candles["candle_trades"] == candles["distinct_trades"] == verdict["unique_sent"]
    assert candles["candle_volume"] == candles["distinct_volume"]


def test_buffer_crash_drill_replays_each_buffered_row_once(tmp_path):
    verdict = run_drill("buffer-crash", "--seconds", "4", "--min-buffered", "1000",
                        "--store", str(tmp_path / "bc"))
    assert verdict["buffered_rows"] >= 500  # trades among the >= 1000 buffered rows
    assert verdict["replayed_rows"] == verdict["buffered_rows"]
    assert verdict["replays"] == 1 and verdict["buffer_left_rows"] == 0
    assert verdict["buffered_keys_missing"] == 0
    assert verdict["lost"] == 0 and verdict["duplicates_stored"] == 0
    candles = verdict["candles"]
    assert candles["bad_minutes"] == 0
    assert candles["candle_trades"] == candles["distinct_trades"] == verdict["unique_sent"]
