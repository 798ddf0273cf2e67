"""Each suite passes on clean data and fails, naming the expectation and the offending
keys, on data seeded with the defect it guards against (real chDB, real GX).

One store per module; every test seeds its own hour of the test day and validates that
hour only, so tests do not see each other's defects. GX's context is shared per process.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import pytest

from feedhouse.store.client import warehouse
from quality.runner import PartitionCheckFailed, check_partition, prune_data_docs, run_quality
from quality.window import Window
from tests.support.dagster_seed import BASE, seed_clean
from tests.support.quality_seed import (
    NOW,
    at,
    book_updates,
    failed,
    hour,
    ledger,
    quotes,
    readings,
    seed,
    store_settings,
    trades,
)

NOT_NULL = "expect_column_values_to_not_be_null({})"
BETWEEN = "expect_column_values_to_be_between({})"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b({})"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return store_settings(tmp_path_factory.mktemp("quality"))


def check(settings, h: int, *suites: str, **kw):
    return run_quality(settings, hour(h), list(suites), docs=False, now=NOW, **kw)


def test_clean_pipeline_output_passes_every_suite_and_is_recorded(store):
    seed_clean(store)  # the Dagster tests' clean pipeline store: 2024-01-15 10:00..10:10
    seed(store, market_quotes=quotes(BASE), market_book_updates=book_updates(BASE))
    window = Window(BASE, BASE + timedelta(hours=1))
    run = run_quality(store, window, now=BASE + timedelta(hours=2))
    assert [r.suite.name for r in run.results] == [
        "iot_readings", "market_book_updates", "market_quotes", "market_trades",
        "ops_ingest_ledger",
    ]  # fmt: skip
    assert all(r.rows > 0 for r in run.results)
    assert run.ok and not [o for r in run.results for o in r.failed]
    # Data Docs: an index and one page per validation, linked from the result.
    assert run.docs_index is not None and run.docs_index.is_file()
    for res in run.results:
        assert res.docs_page is not None and res.docs_page.is_file()
        assert res.suite.name in res.docs_page.read_text()
    with warehouse(store) as client:
        rows = client.query(
            "SELECT suite, count(), sum(success), any(table_name) FROM ops.quality_results "
            "WHERE run_id = {r:String} GROUP BY suite ORDER BY suite",
            parameters={"r": run.run_id},
        ).result_rows
    expected = {r.suite.name: len(r.suite.expectations) for r in run.results}
    assert {s: n for s, n, _, _ in rows} == expected
    assert all(ok == n for _, n, ok, _ in rows)
    assert dict((s, t) for s, _, _, t in rows)["market_trades"] == "market.trades"


def test_trades_missing_keys(store):
    rows = trades(at(1))
    rows[4]["trade_id"] = ""
    rows[7]["symbol"] = ""
    seed(store, market_trades=rows)
    run = check(store, 1, "market_trades")
    bad = failed(run, "market_trades")
    assert set(bad) == {NOT_NULL.format("trade_id"), NOT_NULL.format("symbol")}
    assert bad[NOT_NULL.format("symbol")].sample[0]["trade_id"] == rows[7]["trade_id"]
    assert bad[NOT_NULL.format("trade_id")].unexpected_count == 1
    assert not run.ok  # ERROR severity


def test_trades_non_positive_price_and_amount(store):
    rows = trades(at(2))
    rows[3]["price"] = 0.0
    rows[9]["amount"] = -0.5
    seed(store, market_trades=rows)
    bad = failed(check(store, 2, "market_trades"), "market_trades")
    assert set(bad) == {BETWEEN.format("price"), BETWEEN.format("amount")}
    assert bad[BETWEEN.format("price")].sample[0]["trade_id"] == rows[3]["trade_id"]
    assert bad[BETWEEN.format("amount")].sample[0]["trade_id"] == rows[9]["trade_id"]


def test_trades_side_outside_its_set(store):
    rows = trades(at(3))
    rows[5]["side"] = "SELL"
    seed(store, market_trades=rows)
    bad = failed(check(store, 3, "market_trades"), "market_trades")
    (label,) = bad
    assert label == "expect_column_values_to_be_in_set(side)"
    assert bad[label].sample == [
        {"side": "SELL", "venue": "binance", "symbol": rows[5]["symbol"],
         "trade_id": rows[5]["trade_id"], "exchange_ts": rows[5]["exchange_ts"].isoformat()}
    ]  # fmt: skip


def test_trades_duplicate_compound_key_is_a_warning(store):
    rows = trades(at(4))
    dup = dict(rows[6], received_ts=rows[6]["received_ts"] + timedelta(seconds=1))
    seed(store, market_trades=rows)
    seed(store, market_trades=[dup])  # a later insert: one block would collapse it on write
    run = check(store, 4, "market_trades")
    bad = failed(run, "market_trades")
    label = "expect_compound_columns_to_be_unique(venue,symbol,trade_id)"
    assert set(bad) == {label}
    assert bad[label].severity == "WARN" and bad[label].unexpected_count == 2
    assert {k["trade_id"] for k in bad[label].sample} == {rows[6]["trade_id"]}
    assert run.ok  # WARN only: reported, not fatal


def test_trades_clock_skew_threshold_comes_from_settings(store):
    rows = trades(at(5))
    rows[2]["exchange_ts"] = rows[2]["received_ts"] + timedelta(seconds=30)
    seed(store, market_trades=rows)
    bad = failed(check(store, 5, "market_trades"), "market_trades")
    assert set(bad) == {BETWEEN.format("skew_s")}
    assert bad[BETWEEN.format("skew_s")].sample[0]["skew_s"] == pytest.approx(30.0)
    lenient = store.model_copy(
        update={"quality": store.quality.model_copy(update={"clock_skew_s": 60})}
    )
    assert not failed(check(lenient, 5, "market_trades"), "market_trades")


def test_trades_venue_silence_uses_each_venues_setting(store):
    rows = trades(at(6), n=20) + trades(at(6, minute=15), n=20)  # 15 minutes of silence
    rows += trades(at(6), n=60, venue="kraken", symbols=("BTC-USD",), step_s=30)
    seed(store, market_trades=rows)
    bad = failed(check(store, 6, "market_trades"), "market_trades")
    label = PAIR.format("silence_limit_s,gap_s")
    assert set(bad) == {label}
    (key,) = bad[label].sample
    assert key["venue"] == "binance" and key["exchange_ts"] == at(6, minute=15).isoformat()
    assert key["gap_s"] > 800 and key["silence_limit_s"] == 300
    quality = store.quality.model_copy(update={"venue_silence_overrides_s": {"binance": 1200.0}})
    relaxed = store.model_copy(update={"quality": quality})
    assert not failed(check(relaxed, 6, "market_trades"), "market_trades")


def test_quotes_crossed_book_and_negative_size(store):
    rows = quotes(at(7))
    rows[3]["bid_price"] = rows[3]["ask_price"] + 5
    rows[8]["ask_size"] = -1.0
    seed(store, market_quotes=rows)
    bad = failed(check(store, 7, "market_quotes"), "market_quotes")
    assert set(bad) == {PAIR.format("ask_price,bid_price"), BETWEEN.format("ask_size")}
    assert bad[PAIR.format("ask_price,bid_price")].sample[0]["exchange_ts"] == (
        rows[3]["exchange_ts"].isoformat()
    )


def test_books_crossed_snapshot_negative_size_and_a_sequence_break(store):
    """One row per book event: a snapshot whose best bid is at or above its best ask is a
    crossed book (ERROR), a negative level size is invalid (ERROR), an update that does not
    follow the event before it is a sequence break (WARN); a clean book passes."""
    clean = book_updates(at(14))
    seed(store, market_book_updates=clean)
    run = check(store, 14, "market_book_updates")
    assert run.suite("market_book_updates").rows == 7 and not failed(run, "market_book_updates")

    rows = book_updates(at(15))
    rows[0]["price"] = rows[1]["price"] + 2  # the snapshot's best bid above its best ask
    rows[8]["amount"] = -0.5  # update 103 (rows 0-5: the snapshot, 100)
    rows[10]["prev_update_id"] = 99  # update 105 does not follow 104
    seed(store, market_book_updates=rows)
    run = check(store, 15, "market_book_updates")
    bad = failed(run, "market_book_updates")
    assert set(bad) == {PAIR.format("best_ask,best_bid"), BETWEEN.format("min_amount"),
                        BETWEEN.format("sequence_break")}
    assert bad[PAIR.format("best_ask,best_bid")].sample[0]["update_id"] == 100
    assert bad[BETWEEN.format("min_amount")].sample[0]["update_id"] == 103
    assert bad[BETWEEN.format("sequence_break")].sample[0]["update_id"] == 105
    # the book is crossed at the window's end too, but unsynced by the break after its
    # snapshot: not judged there (the live path resyncs it)
    assert PAIR.format("end_best_ask,end_best_bid") not in bad
    assert not run.ok  # the crossed book and the negative size are ERRORs


def test_books_crossed_at_the_window_end_by_updates_after_a_sound_snapshot(store):
    """The book rebuilt at the window's end (last snapshot + updates, as book_at does) must
    not be crossed: a bid update above the best ask after an uncrossed snapshot, ids in
    sequence, is an ERROR on the symbol's last event; the same book without it passes."""
    rows = book_updates(at(16))
    seed(store, market_book_updates=rows)
    run = check(store, 16, "market_book_updates")
    assert not failed(run, "market_book_updates") and run.ok

    rows = book_updates(at(17))
    last = rows[-1]
    rows.append({**last, "exchange_ts": last["exchange_ts"] + timedelta(seconds=1), "side": "bid",
                 "price": 64002.5, "amount": 2.0, "update_id": last["update_id"] + 1,
                 "prev_update_id": last["update_id"]})  # above the asks 64001 and 64002
    seed(store, market_book_updates=rows)
    run = check(store, 17, "market_book_updates")
    bad = failed(run, "market_book_updates")
    assert set(bad) == {PAIR.format("end_best_ask,end_best_bid")}  # the snapshot is sound
    crossed = bad[PAIR.format("end_best_ask,end_best_bid")]
    assert crossed.unexpected_count == 1 and crossed.sample[0]["update_id"] == 107
    assert not run.ok  # ERROR


def test_books_window_end_check_reads_back_to_book_rebuild_minutes_only(store):
    """A book whose last snapshot is older than quality.book_rebuild_minutes before the
    window's start is not rebuilt (that would read every update since): not judged; with
    a longer horizon the same crossed book fails."""
    # snapshot and updates at 16:00 (another venue: the module's store holds okx books of
    # the hours before, whose snapshots would be this symbol's)
    rows = book_updates(at(18) - timedelta(hours=2), venue="bitget")
    last = rows[-1]
    rows.append({**last, "exchange_ts": at(18) + timedelta(minutes=5), "side": "bid",
                 "price": 64002.5, "amount": 2.0, "update_id": last["update_id"] + 1,
                 "prev_update_id": last["update_id"]})  # crosses the book, in hour 18
    seed(store, market_book_updates=rows)
    assert not failed(check(store, 18, "market_book_updates"), "market_book_updates")
    quality = store.quality.model_copy(update={"book_rebuild_minutes": 180})
    wider = check(store.model_copy(update={"quality": quality}), 18, "market_book_updates")
    assert set(failed(wider, "market_book_updates")) == {PAIR.format("end_best_ask,end_best_bid")}


def test_readings_outside_physical_range(store):
    rows = readings(at(8))
    hot = next(r for r in rows if r["sensor"] == "temperature" and r["seq"] == 4)
    hot["value"] = 900.0
    dry = next(r for r in rows if r["sensor"] == "humidity" and r["seq"] == 2)
    dry["value"] = -3.0
    seed(store, iot_readings=rows)
    bad = failed(check(store, 8, "iot_readings"), "iot_readings")
    assert set(bad) == {PAIR.format("range_max,value"), PAIR.format("value,range_min")}
    key = bad[PAIR.format("range_max,value")].sample[0]
    assert (key["device_id"], key["sensor"], key["seq"]) == (hot["device_id"], "temperature", 4)
    key = bad[PAIR.format("value,range_min")].sample[0]
    assert (key["sensor"], key["seq"], key["range_min"]) == ("humidity", 2, 0.0)


def test_readings_sequence_gap_and_unknown_sensor(store):
    rows = [
        r for r in readings(at(9)) if not (r["device_id"] == "dev-001" and r["seq"] in (5, 6, 7))
    ]
    odd = dict(rows[0], sensor="radiation", unit="uSv")
    seed(store, iot_readings=[*rows, odd])
    run = check(store, 9, "iot_readings")
    bad = failed(run, "iot_readings")
    assert set(bad) == {BETWEEN.format("seq_gap"), NOT_NULL.format("range_min")}
    gaps = bad[BETWEEN.format("seq_gap")]
    assert gaps.unexpected_count == 3  # dev-001: one 4 -> 8 jump per sensor
    assert {(k["device_id"], k["seq"], k["seq_gap"]) for k in gaps.sample} == {("dev-001", 8, 4)}
    assert bad[NOT_NULL.format("range_min")].sample[0]["sensor"] == "radiation"
    assert run.ok  # both WARN


def test_readings_from_the_future(store):
    rows = readings(at(10))
    rows[5]["device_ts"] = NOW + timedelta(hours=1)  # a device clock an hour ahead
    seed(store, iot_readings=rows)
    # The window must include the future reading: check from 10:00 to the day's end.
    window = Window(at(10), at(10) + timedelta(days=1))
    run = run_quality(store, window, ["iot_readings"], docs=False, now=NOW)
    bad = failed(run, "iot_readings")
    assert set(bad) == {BETWEEN.format("future_s")}
    assert bad[BETWEEN.format("future_s")].sample[0]["future_s"] == pytest.approx(3600.0)
    assert not run.ok


def test_ledger_counter_below_zero(store):
    rows = ledger(at(11))
    rows[1]["buffered"] = 2**64 - 3  # a UInt64 that wrapped: -3 as Int64
    rows[1]["replayed"] = 0
    seed(store, ops_ingest_ledger=rows)
    bad = failed(check(store, 11, "ops_ingest_ledger"), "ops_ingest_ledger")
    assert BETWEEN.format("buffered") in bad
    key = bad[BETWEEN.format("buffered")].sample[0]
    assert key == {"buffered": -3, "feed": "binance-trades", "minute": at(11, minute=1).isoformat()}


def test_ledger_invariants_per_feed_and_minute(store):
    rows = ledger(at(12)) + ledger(at(12), feed="coinbase-trades")
    rows[2]["received"] += 1  # a message counted nowhere else
    rows[4]["inserted"] -= 2  # two records lost between parse and insert
    # Split rows (SummingMergeTree parts) are summed before checking: not a defect.
    extra = dict(rows[0], **{c: 0 for c in rows[0] if c not in ("feed", "minute")})
    extra.update(parsed=3, inserted=3)
    seed(store, ops_ingest_ledger=[*rows, extra])
    bad = failed(check(store, 12, "ops_ingest_ledger"), "ops_ingest_ledger")
    assert set(bad) == {BETWEEN.format("message_imbalance"), BETWEEN.format("record_imbalance")}
    msg = bad[BETWEEN.format("message_imbalance")].sample
    assert msg == [
        {"message_imbalance": 1, "feed": "binance-trades", "minute": at(12, minute=2).isoformat()}
    ]
    rec = bad[BETWEEN.format("record_imbalance")].sample
    assert rec == [
        {"record_imbalance": 2, "feed": "coinbase-trades", "minute": at(12, minute=1).isoformat()}
    ]


def test_ledger_minutes_still_settling_are_not_checked(store):
    rows = ledger(at(13), minutes=1)
    rows[0]["received"] += 7
    seed(store, ops_ingest_ledger=rows)
    soon = at(13, minute=1)  # the minute has just closed: records may still be in flight
    run = run_quality(store, hour(13), ["ops_ingest_ledger"], docs=False, now=soon)
    assert run.suite("ops_ingest_ledger").rows == 0 and run.ok
    assert failed(check(store, 13, "ops_ingest_ledger"), "ops_ingest_ledger")


def test_check_partition_fails_only_the_partition_with_an_error(store):
    day = "2026-11-21"
    good = trades(at(1, day=day), venue="coinbase", symbols=("BTC-USD",))
    bad = trades(at(1, day=day))
    bad[0]["price"] = -1.0
    seed(store, market_trades=good + bad)
    run = check_partition(store, day, "coinbase", docs=False)
    assert run.ok and {r.suite.name for r in run.results} == {
        "market_trades", "market_quotes", "market_book_updates"}
    assert run.suite("market_trades").rows == len(good)
    with pytest.raises(
        PartitionCheckFailed, match=r"binance.*expect_column_values_to_be_between\(price\)"
    ):
        check_partition(store, day, "binance", docs=False)
    with warehouse(store) as client:
        sample = client.query(
            "SELECT sample FROM ops.quality_results WHERE success = 0 AND window_start = "
            "{d:DateTime64(6, 'UTC')} AND expectation = 'expect_column_values_to_be_between(price)'",
            parameters={"d": at(0, day=day)},
        ).result_rows
    assert json.loads(sample[0][0])[0]["trade_id"] == bad[0]["trade_id"]


def test_old_data_docs_pages_are_pruned(tmp_path):
    old = tmp_path / "validations" / "market_trades" / "__none__" / "20260101T000000Z" / "b.html"
    new = tmp_path / "validations" / "market_trades" / "__none__" / "20261120T000000Z" / "b.html"
    for page in (old, new):
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    eight_days_ago = time.time() - 8 * 86400
    os.utime(old, (eight_days_ago, eight_days_ago))
    assert prune_data_docs(tmp_path, keep_days=7) == 1
    assert new.is_file() and not old.parent.exists()
