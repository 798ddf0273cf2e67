"""DedupWindow as plain logic: repeats, expiry by event time, lateness, snapshot/restore."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from xxhash import xxh3_64_intdigest

from dataflows.dedup.recovery_keys import check_recovery_keys
from dataflows.dedup.stage import dedup_parsed
from dataflows.dedup.window import (
    KEY_VERSION,
    DedupWindow,
    KeyVersionError,
    stable_hash,
    trade_keys,
)
from dataflows.parse.stage import ParsedBatch
from feedhouse.core.records import Trade
from feedhouse.store.ledger import LedgerDelta
from tests.support.cli import run_cli

S = 1_000_000
T0 = 1_700_000_000 * S


def keep(win: DedupWindow, keys, ts) -> list[bool]:
    return win.filter(np.array(keys, dtype=np.uint64), np.array(ts, dtype=np.int64)).tolist()


def test_repeats_within_batch_and_window_are_dropped():
    win = DedupWindow(window_s=60, allowed_lateness_s=5)
    assert keep(win, [1, 2, 1, 3], [T0, T0, T0 + 1, T0 + 2]) == [True, True, False, True]
    assert keep(win, [3, 4, 2], [T0 + S, T0 + S, T0 + 2 * S]) == [False, True, False]
    assert win.duplicates == 3
    assert len(win) == 4


def test_keys_forgotten_after_the_window_of_event_time():
    win = DedupWindow(window_s=10, allowed_lateness_s=2)
    keep(win, [7], [T0])
    # watermark = max event - lateness; key at T0 is remembered while T0 >= watermark - 10s
    assert keep(win, [7], [T0 + 12 * S]) == [False]  # watermark T0+10s: cutoff T0, still kept
    assert keep(win, [8], [T0 + 12 * S + 1]) == [True]  # cutoff moves past T0
    assert keep(win, [7], [T0 + 13 * S]) == [True]  # forgotten: accepted again
    win.expire()
    assert len(win) == 2  # key 7 (new) and 8; the old 7 is gone


def test_wall_clock_does_not_expire_keys():
    win = DedupWindow(window_s=10, allowed_lateness_s=0)
    keep(win, [1], [T0])
    # no newer event time arrives: however long we wait, the key stays
    assert keep(win, [1], [T0]) == [False]


def test_late_records_within_lateness_are_deduplicated():
    win = DedupWindow(window_s=30, allowed_lateness_s=5)
    keep(win, [1], [T0])
    keep(win, [2], [T0 + 40 * S])  # watermark T0+35s, cutoff T0+5s: key 1 forgotten
    assert keep(win, [1], [T0 + 6 * S]) == [True]
    # late but inside window+lateness: remembered and checked
    assert keep(win, [3, 3], [T0 + 20 * S, T0 + 20 * S]) == [True, False]
    assert keep(win, [3], [T0 + 21 * S]) == [False]
    assert win.late == 0


def test_records_older_than_the_window_are_counted_late_and_remembered_at_the_watermark():
    win = DedupWindow(window_s=30, allowed_lateness_s=5)
    keep(win, [1], [T0 + 100 * S])  # watermark T0+95s, cutoff T0+65s
    assert keep(win, [9, 9], [T0, T0]) == [True, False]  # first kept, its repeat dropped
    assert win.late == 2
    assert keep(win, [9], [T0 + S]) == [False]  # remembered (as of the watermark)
    keep(win, [2], [T0 + 125 * S])  # watermark T0+120s: 9 still known (stored at T0+95s)
    assert keep(win, [9], [T0]) == [False]
    keep(win, [3], [T0 + 131 * S])  # cutoff T0+96s: now forgotten
    assert keep(win, [9], [T0]) == [True]


def test_many_batches_compact_and_still_find_keys():
    win = DedupWindow(window_s=3600, allowed_lateness_s=0)
    rng = np.random.default_rng(1)
    keys = rng.integers(1, 2**63, size=200_000, dtype=np.uint64)
    for i in range(0, keys.size, 1000):
        assert win.filter(keys[i : i + 1000], np.full(1000, T0 + i, dtype=np.int64)).all()
    # every key again, in other batch shapes: all repeats
    for i in range(0, keys.size, 777):
        chunk = keys[i : i + 777]
        assert not win.filter(chunk, np.full(chunk.size, T0 + i, dtype=np.int64)).any()
    assert len(win) == keys.size
    assert win.nbytes() == 16 * keys.size


def test_snapshot_restore_equality_and_behaviour():
    win = DedupWindow(window_s=60, allowed_lateness_s=1)
    for i in range(40):  # enough batches to use runs, mid and main
        keep(win, [i * 10 + j for j in range(10)], [T0 + i * S] * 10)
    snap = pickle.loads(pickle.dumps(win.snapshot()))
    twin = DedupWindow.restore(snap)
    assert twin.snapshot().keys() == win.snapshot().keys()
    for name in ("main", "mid"):
        for a, b in zip(getattr(win, name), getattr(twin, name), strict=True):
            assert np.array_equal(a, b)
    assert twin.max_event_us == win.max_event_us and twin.duplicates == win.duplicates
    probe_keys, probe_ts = [5, 399, 1000, 1001], [T0 + 41 * S] * 4
    assert keep(twin, probe_keys, probe_ts) == keep(win, probe_keys, probe_ts)
    # the snapshot is not disturbed by later work (arrays are never changed in place)
    before = [a.copy() for a in snap["main"]]
    keep(win, list(range(5000, 6000)), [T0 + 42 * S] * 1000)
    assert all(np.array_equal(a, b) for a, b in zip(before, snap["main"], strict=True))


@pytest.mark.integration
def test_hash_is_stable_across_processes():
    code = (
        "from dataflows.dedup.window import stable_hash; print(stable_hash('binance\\x1fBTC-USDT\\x1f1'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == stable_hash("binance\x1fBTC-USDT\x1f1")


def _trade(tid: str, ts: int) -> Trade:
    return Trade("binance", "BTC-USDT", "BTCUSDT", tid, 1.0, 1.0, "buy", ts, ts)


def test_dedup_step_counts_duplicates_by_event_minute():
    win = DedupWindow(600, 5)
    minute = (T0 // (60 * S)) * 60
    trades = [_trade("1", T0), _trade("2", T0), _trade("1", T0 + 1)]
    parsed = ParsedBatch("f", "f", 0, 2, trades, [], [], [], [], LedgerDelta())
    out = dedup_parsed(win, parsed)
    assert [t.trade_id for t in out.trades] == ["1", "2"]
    assert out.ledger.cells[("f", minute)][5] == 1  # duplicates
    assert np.array_equal(out.hashes[0], trade_keys(trades[:2]))


def test_dedup_logic_ticks_the_sink_after_records_and_when_idle():
    from datetime import UTC, datetime

    from dataflows.dedup.stage import DedupLogic

    logic = DedupLogic({}, None, tick_s=0.02, idle_s=1.0)
    parsed = ParsedBatch("f", "f", 0, 0, [_trade("1", T0)], [], [], [], [], LedgerDelta())
    out, _ = logic.on_batch([parsed])
    assert [len(p.trades) for p in out] == [1]
    soon = (logic.notify_at() - datetime.now(UTC)).total_seconds()
    assert soon <= 0.02  # records passed: flush them after batch_ms
    ticks, _ = logic.on_notify()
    assert [(t.feed, t.records, t.last_pos < t.first_pos) for t in ticks] == [("f", 0, True)]
    logic.on_notify()
    idle = (logic.notify_at() - datetime.now(UTC)).total_seconds()
    assert 0.5 < idle <= 1.0  # nothing new: a heartbeat per second
    restored = DedupLogic({}, logic.snapshot())
    out, _ = restored.on_batch([parsed])
    assert out[0].trades == []  # the restored window knows the key


def test_a_record_stamped_far_ahead_does_not_stop_forgetting():
    # one device with a broken clock (200 years ahead) must not lift the watermark past
    # every real record: the window would then never forget anything again
    now = [T0]
    win = DedupWindow(window_s=60, allowed_lateness_s=5, max_future_s=3600,
                      clock_us=lambda: now[0])
    keep(win, [999], [T0 + 200 * 365 * 86_400 * S])
    assert win.future == 1
    for i in range(3 * 3600):  # three hours of one record per second, clock following
        now[0] = T0 + i * S
        keep(win, [i], [now[0]])
    win.expire()
    # remembered: one window (+ lateness) of real records, not all 10,800 of them
    assert len(win) <= 70
    assert win.late < 3700  # records behind the clamped outlier for its first hour only
    assert keep(win, [999], [T0 + 200 * 365 * 86_400 * S]) == [True]  # forgotten too


def test_keys_are_xxh3_64_of_the_utf8_fields():
    # pinned: a stored window or insert token depends on these staying the same
    assert stable_hash("binance\x1fBTC-USDT\x1f1") == xxh3_64_intdigest(b"binance\x1fBTC-USDT\x1f1")
    assert stable_hash("abc") == 0x78AF5F94892F3950
    keys = trade_keys([_trade("1", T0), _trade("é", T0)])
    assert keys.dtype == np.uint64
    assert keys.tolist() == [xxh3_64_intdigest(b"binance\x1fBTC-USDT\x1f1"),
                             xxh3_64_intdigest("binance\x1fBTC-USDT\x1fé".encode())]


def _old_recovery(folder, snap: dict) -> None:
    """A Bytewax recovery folder whose dedup step holds `snap` for feed `binance`."""
    import pickle
    import sqlite3

    from bytewax.recovery import init_db_dir

    folder.mkdir()
    init_db_dir(folder, 1)
    con = sqlite3.connect(folder / "part-0.sqlite3")
    con.execute("CREATE TABLE IF NOT EXISTS snaps (step_id TEXT NOT NULL, state_key TEXT NOT "
                "NULL, snap_epoch INTEGER NOT NULL, ser_change BLOB, "
                "PRIMARY KEY (step_id, state_key, snap_epoch))")
    con.execute("INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES "
                "('feedhouse.dedup', 'binance', 7, ?)", (pickle.dumps(snap),))
    con.commit()
    con.close()


@pytest.mark.integration
def test_a_snapshot_carries_its_key_version_and_an_old_one_is_refused(tmp_path):
    win = DedupWindow(600, 5)
    keep(win, [1, 2, 3], [T0] * 3)
    snap = win.snapshot()
    assert snap["key_version"] == KEY_VERSION == 2
    assert len(DedupWindow.restore(snap)) == 3
    old = {k: v for k, v in snap.items() if k != "key_version"}  # written before xxh3
    with pytest.raises(KeyVersionError, match=r"version 1 \(blake2b-64\).*xxh3-64"):
        DedupWindow.restore(old)
    # `feedhouse run` checks its recovery folder first: one line, exit 1, nothing started
    ok_folder, old_folder = tmp_path / "ok", tmp_path / "old"
    _old_recovery(ok_folder, snap)
    _old_recovery(old_folder, old)
    assert check_recovery_keys(ok_folder) == 1
    with pytest.raises(KeyVersionError, match=f"recovery folder {old_folder} \\(feed binance\\)"):
        check_recovery_keys(old_folder)
    config = tmp_path / "feedhouse.yaml"
    config.write_text(
        f"home: {tmp_path / 'home'}\nrecovery_dir: {old_folder}\nfeeds:\n"
        "  - {name: binance, venue: binance, url: 'ws://127.0.0.1:9/ws', "
        "symbols: [BTC-USDT], channels: [trades]}\n")
    proc = run_cli("--config", str(config), "run", "--seconds", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: recovery folder {old_folder} (feed binance) holds "
                                "dedup keys of version 1"), proc.stderr
    assert "Traceback" not in proc.stderr
