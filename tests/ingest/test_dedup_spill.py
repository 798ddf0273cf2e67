"""A dedup window's large level kept in a file: snapshots stay small, restores find it."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np

from dataflows.dedup import spill as spill_mod
from dataflows.dedup.spill import MIN_SPILL_KEYS, Spill
from dataflows.dedup.stage import DedupLogic
from dataflows.dedup.window import DedupWindow
from dataflows.parse.stage import ParsedBatch
from feedhouse.core.records import Trade
from feedhouse.store.ledger import LedgerDelta

S = 1_000_000
T0 = 1_700_000_000 * S


def _big_window(n: int = MIN_SPILL_KEYS * 2) -> DedupWindow:
    win = DedupWindow(window_s=600, allowed_lateness_s=5)
    keys = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for chunk in np.array_split(np.arange(n), 40):  # runs -> mid -> main, as live
        win.filter(keys[chunk], T0 + chunk.astype(np.int64))
    win.expire()
    assert win.main[0].size >= MIN_SPILL_KEYS
    return win


def test_snapshot_names_the_file_once_per_main_level_and_restores_every_key(tmp_path):
    win = _big_window()
    spill = Spill(tmp_path, "binance")
    snap = win.snapshot(spill)
    blob = pickle.dumps(snap)
    # only the small levels are pickled
    assert snap["main"] is None and len(blob) < 16 * (len(win) - win.main[0].size) + 4096
    # the next epoch with the same main level writes nothing new
    assert win.snapshot(spill)["main_file"] == snap["main_file"]
    assert len(list(tmp_path.glob("dedup-binance-*.keys"))) == 1
    twin = DedupWindow.restore(pickle.loads(blob), spill=Spill(tmp_path, "binance"))
    assert len(twin) == len(win)
    for a, b in zip(twin._levels(), win._levels(), strict=True):
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # every key remembered is still a repeat after the restore
    keys = np.concatenate([k for k, _ in win._levels()])
    assert not twin.filter(keys[:1000], np.full(1000, T0 + 10, dtype=np.int64)).any()


def test_small_windows_are_pickled_whole(tmp_path):
    win = DedupWindow(window_s=60)
    win.filter(np.array([1, 2, 3], dtype=np.uint64), np.array([T0] * 3, dtype=np.int64))
    snap = win.snapshot(Spill(tmp_path, "f"))
    assert "main_file" not in snap and not list(tmp_path.iterdir())
    assert len(DedupWindow.restore(snap)) == 3


def test_a_missing_file_resumes_without_its_keys_and_says_so(tmp_path, caplog):
    win = _big_window()
    snap = win.snapshot(Spill(tmp_path, "okx"))
    (tmp_path / snap["main_file"]).unlink()
    twin = DedupWindow.restore(snap, spill=Spill(tmp_path, "okx"))
    assert len(twin) == len(win) - win.main[0].size
    assert "resuming without its" in caplog.text and snap["main_file"] in caplog.text


def test_old_files_go_only_when_newer_generations_exist_and_they_are_old(tmp_path, monkeypatch):
    spill = Spill(tmp_path, "a")
    other = Spill(tmp_path, "a-b")  # a feed whose name starts like another's
    other_file = other.save(np.arange(3, dtype=np.uint64), np.arange(3, dtype=np.int64))
    names = [spill.save(np.arange(i, dtype=np.uint64), np.arange(i, dtype=np.int64))
             for i in range(1, 6)]
    assert len(list(tmp_path.glob("dedup-a-[0-9]*.keys"))) == 5  # all young: kept
    old = time.time() - spill_mod.KEEP_S - 10
    for name in [*names, other_file]:
        os.utime(tmp_path / name, (old, old))
    spill.save(np.arange(9, dtype=np.uint64), np.arange(9, dtype=np.int64))
    left = sorted(p.name for p in tmp_path.glob("dedup-a-[0-9]*.keys"))
    assert len(left) == spill_mod.KEEP and names[-1] in left and names[-2] in left
    assert (tmp_path / other_file).exists()


def test_dedup_logic_spills_and_resumes_through_its_folder(tmp_path):
    logic = DedupLogic({}, None, spill_dir=tmp_path)
    trades = [Trade("binance", "BTC-USDT", "BTCUSDT", str(i), 1.0, 1.0, "buy", T0 + i, T0 + i)
              for i in range(MIN_SPILL_KEYS + 5000)]
    for chunk in range(0, len(trades), 5000):
        part = trades[chunk:chunk + 5000]
        logic.on_batch([ParsedBatch("f", "f", chunk, chunk + len(part) - 1, part, [], [], [],
                                    [], LedgerDelta())])
    logic.window.expire()
    snap = pickle.loads(pickle.dumps(logic.snapshot()))
    assert snap["main"] is None and (tmp_path / snap["main_file"]).exists()
    resumed = DedupLogic({}, snap, spill_dir=tmp_path)
    again = ParsedBatch("f", "f", 0, 1, trades[:2], [], [], [], [], LedgerDelta())
    out, _ = resumed.on_batch([again])
    assert out[0].trades == []
