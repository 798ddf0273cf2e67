"""Event-time dedup window: drop records whose composite key was seen within the window.

Keys are 64-bit xxh3 digests (`xxhash.xxh3_64_intdigest`, seed 0) of the record's
composite key, UTF-8 encoded with \x1f between fields: stable across processes and
versions (unlike `hash()`), and ~4x cheaper than the blake2b-64 used before
(bench/key_hash.py). Trades (venue, symbol, trade_id); quotes (venue, symbol,
exchange_ts, bid, ask); readings (device_id, sensor, seq) or (device_id, sensor, device_ts).

Recovery: a window's snapshot names its `key_version` (KEY_VERSION; snapshots without
one hold version 1, blake2b keys). A hash cannot be converted into another, so restoring
a window of another version is refused (`KeyVersionError`, one line saying what to do);
`feedhouse run` checks the recovery folder before it starts (dataflows/recovery_keys.py).

`DedupWindow` is plain logic (tested without a dataflow). The watermark is
`max event time seen - allowed_lateness`; a key seen at event time t is remembered while
t >= watermark - window and forgotten after. Records older than `watermark - window`
("too late": a twin may already be forgotten) are counted in `late`, still checked
against the keys remembered, and remembered as if they happened at the watermark, so
repeated deliveries of an old record (reconnect replays, snapshots) are dropped too; a
twin already forgotten cannot be caught here: ClickHouse's insert tokens and
ReplacingMergeTree are the net behind those.

Event times more than `max_future_s` ahead of the wall clock (a device with a broken
clock, a misread timestamp unit) count as that bound: one record stamped a century ahead
would otherwise lift the watermark past every real record, and nothing would be forgotten
again (unbounded memory for the whole feed). Backfills and replays are in the past, so
the clamp never touches them.

Memory: keys live in sorted numpy arrays (uint64 key + int64 event µs = 16 bytes/key) in
three levels: `main` (large), `mid`, and small `runs` (one per micro-batch). New runs
merge into `mid`, `mid` into `main` when it reaches 1/8 of it; expired keys are dropped
at each merge into main. Arrays are never changed in place, so `snapshot()` hands out
references: no deep copy per epoch (Bytewax's `stateful_map` copies its state each epoch).
Bytewax still pickles what `snapshot()` returns every epoch: a large `main` level is
written to a file of its own once per change instead (`snapshot(spill)`,
dataflows/dedup/spill.py), so an epoch pickles only `mid` and the runs.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from xxhash import xxh3_64_intdigest

from dataflows.dedup.spill import MIN_SPILL_KEYS, Spill
from dataflows.parse.columns import ReadingColumns
from dataflows.parse.trade_columns import TradeColumns
from feedhouse.core.errors import FeedhouseError
from feedhouse.core.records import Quote, Reading, Trade

log = logging.getLogger(__name__)
_EMPTY_K = np.empty(0, dtype=np.uint64)
_EMPTY_T = np.empty(0, dtype=np.int64)
MAX_RUNS = 16
MIN_MID = 65_536
MAX_FUTURE_S = 3600.0  # event times beyond now + this are treated as now + this
# 1: blake2b-64 little-endian (snapshots before the version field); 2: xxh3-64
KEY_VERSION = 2
KEY_NAMES = {1: "blake2b-64", 2: "xxh3-64"}


class KeyVersionError(FeedhouseError):
    """A recovery snapshot whose dedup keys were hashed another way."""


def wall_clock_us() -> int:
    return time.time_ns() // 1000


def stable_hash(text: str) -> int:
    return xxh3_64_intdigest(text.encode())


def _hashes(texts) -> np.ndarray:
    return np.fromiter((xxh3_64_intdigest(t.encode()) for t in texts), dtype=np.uint64)


def trade_keys(trades: Sequence[Trade] | TradeColumns) -> np.ndarray:
    """xxh3-64 of `venue\x1fsymbol\x1ftrade_id`, from the columns (rows: made columns),
    in C-level maps: one `venue\x1fsymbol\x1f` prefix per distinct symbol of a one-venue
    batch (the usual case), then a concatenation, an encode and a hash per trade."""
    trades = TradeColumns.from_rows(trades)
    venues = set(trades.venue)
    if len(venues) == 1:
        venue = venues.pop()
        prefix = {s: f"{venue}\x1f{s}\x1f" for s in set(trades.symbol)}
        prefixes = map(prefix.__getitem__, trades.symbol)
    else:
        prefixes = map("{}\x1f{}\x1f".format, trades.venue, trades.symbol)
    texts = map(str.encode, map(operator.add, prefixes, trades.trade_id))
    return np.fromiter(map(xxh3_64_intdigest, texts), dtype=np.uint64, count=len(trades))


def quote_keys(quotes: Sequence[Quote]) -> np.ndarray:
    # an update is its venue's update id where it has one, else every field (sizes too)
    return _hashes(
        f"{q.venue}\x1f{q.symbol}\x1f\x1e{q.update_id}" if q.update_id else
        f"{q.venue}\x1f{q.symbol}\x1f{q.exchange_ts}\x1f{q.bid_price!r}\x1f{q.ask_price!r}"
        f"\x1f{q.bid_size!r}\x1f{q.ask_size!r}"
        for q in quotes
    )


def reading_keys(readings: Sequence[Reading] | ReadingColumns, by: str = "seq") -> np.ndarray:
    """xxh3-64 of `device\x1fsensor\x1fseq` (or `...\x1f\x1e<device_ts>`); the same keys
    from `Reading` rows and from `ReadingColumns` (the MQTT hot path: no tuple per row)."""
    if isinstance(readings, ReadingColumns):
        devices, sensors = readings.device_id, readings.sensor
        third = (readings.device_ts if by == "device_ts" else readings.seq).tolist()
    else:
        devices = [r.device_id for r in readings]
        sensors = [r.sensor for r in readings]
        third = [r.device_ts if by == "device_ts" else r.seq for r in readings]
    sep = "\x1f\x1e" if by == "device_ts" else "\x1f"
    h = xxh3_64_intdigest
    return np.fromiter(
        (h(f"{d}\x1f{s}{sep}{x}".encode()) for d, s, x in zip(devices, sensors, third, strict=True)),
        dtype=np.uint64, count=len(devices),
    )


def _merge(ak: np.ndarray, at: np.ndarray, bk: np.ndarray, bt: np.ndarray):
    """Merge two key-sorted (key, ts) array pairs into one."""
    if ak.size == 0:
        return bk, bt
    if bk.size == 0:
        return ak, at
    idx = np.searchsorted(ak, bk)
    return np.insert(ak, idx, bk), np.insert(at, idx, bt)


class DedupWindow:
    """Remembers keys for `window_s` of event time behind a watermark."""

    def __init__(
        self,
        window_s: float,
        allowed_lateness_s: float = 0.0,
        max_future_s: float = MAX_FUTURE_S,
        clock_us: Callable[[], int] = wall_clock_us,
    ) -> None:
        self.window_us = int(window_s * 1_000_000)
        self.lateness_us = int(allowed_lateness_s * 1_000_000)
        self.max_future_us = int(max_future_s * 1_000_000)
        self.clock_us = clock_us
        self.future = 0  # records whose event time was clamped to now + max_future
        self.max_event_us: int | None = None
        self.main = (_EMPTY_K, _EMPTY_T)
        self.mid = (_EMPTY_K, _EMPTY_T)
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []
        self.duplicates = 0
        self.late = 0

    # --- time -------------------------------------------------------------------------
    @property
    def watermark_us(self) -> int | None:
        if self.max_event_us is None:
            return None
        return self.max_event_us - self.lateness_us

    @property
    def cutoff_us(self) -> int:
        """Keys with event time below this are forgotten."""
        wm = self.watermark_us
        return np.iinfo(np.int64).min if wm is None else wm - self.window_us

    # --- the batch API ----------------------------------------------------------------
    def filter(self, hashes: np.ndarray, event_ts_us: np.ndarray) -> np.ndarray:
        """Keep mask for one micro-batch: False for repeats (within the batch or window)."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        ts = np.asarray(event_ts_us, dtype=np.int64)
        n = hashes.size
        if n:
            horizon = self.clock_us() + self.max_future_us
            ahead = ts > horizon
            n_ahead = int(ahead.sum())
            if n_ahead:
                self.future += n_ahead
                ts = np.where(ahead, horizon, ts)
        keep = np.ones(n, dtype=bool)
        if n == 0:
            return keep
        # A micro-batch is judged against the watermark as it stood before it: one batch
        # can span a lot of event time (a replay at full speed), and advancing first
        # would forget the twin of a record that sits at the batch's start.
        cutoff = self.cutoff_us
        late = ts < cutoff
        n_late = int(late.sum())
        if n_late:
            # too late to be judged by event time: checked against what is remembered, and
            # remembered as if it happened at the watermark (repeat deliveries of it are
            # dropped for one more window of event-time progress)
            self.late += n_late
            ts = np.where(late, self.watermark_us, ts)
        batch_max = int(ts.max())
        if self.max_event_us is None or batch_max > self.max_event_us:
            self.max_event_us = batch_max
        uniq, first = np.unique(hashes, return_index=True)
        seen = self._seen(uniq, cutoff)
        keep[:] = False
        fresh_idx = first[~seen]
        keep[fresh_idx] = True
        if fresh_idx.size:
            self._add(uniq[~seen], ts[fresh_idx])
        self.duplicates += n - int(keep.sum())
        return keep

    def _levels(self):
        yield self.main
        yield self.mid
        yield from self.runs

    def _seen(self, keys: np.ndarray, cutoff: int) -> np.ndarray:
        seen = np.zeros(keys.size, dtype=bool)
        for k, t in self._levels():
            if k.size == 0:
                continue
            pos = np.searchsorted(k, keys)
            pos[pos == k.size] = k.size - 1
            seen |= (k[pos] == keys) & (t[pos] >= cutoff)
        return seen

    def _add(self, keys: np.ndarray, ts: np.ndarray) -> None:
        # keys come sorted from np.unique; ts aligned with them
        self.runs.append((keys, ts.astype(np.int64, copy=False)))
        if len(self.runs) >= MAX_RUNS:
            self._compact()

    def _compact(self) -> None:
        k = np.concatenate([r[0] for r in self.runs])
        t = np.concatenate([r[1] for r in self.runs])
        order = np.lexsort((-t, k))  # by key, newest first: lookups see the newest twin
        self.mid = _merge(*self.mid, k[order], t[order])
        self.runs = []
        if self.mid[0].size >= max(MIN_MID, self.main[0].size // 8):
            mk, mt = _merge(*self.main, *self.mid)
            alive = mt >= self.cutoff_us
            self.main = (mk[alive], mt[alive]) if not alive.all() else (mk, mt)
            self.mid = (_EMPTY_K, _EMPTY_T)

    def expire(self) -> None:
        """Drop forgotten keys now (they are also ignored by lookups before that)."""
        if self.runs:
            self._compact()
        cutoff = self.cutoff_us
        for name in ("main", "mid"):
            k, t = getattr(self, name)
            alive = t >= cutoff
            if not alive.all():
                setattr(self, name, (k[alive], t[alive]))

    # --- size and recovery --------------------------------------------------------------
    def __len__(self) -> int:
        return sum(k.size for k, _ in self._levels())

    def nbytes(self) -> int:
        return sum(k.nbytes + t.nbytes for k, t in self._levels())

    def snapshot(self, spill: Spill | None = None) -> dict[str, Any]:
        """Cheap: arrays are immutable by convention, so references are enough. With
        `spill`, a large `main` level goes to its file (once per change) and the snapshot
        names the file: Bytewax pickles the snapshot every epoch (dataflows/dedup/spill.py)."""
        main: Any = self.main
        extra = {}
        if spill is not None and main[0].size >= MIN_SPILL_KEYS:
            extra = {"main_file": spill.save(*main), "main_size": int(main[0].size)}
            main = None
        return {
            **extra,
            "key_version": KEY_VERSION,
            "window_us": self.window_us,
            "lateness_us": self.lateness_us,
            "max_event_us": self.max_event_us,
            "main": main,
            "mid": self.mid,
            "runs": list(self.runs),
            "duplicates": self.duplicates,
            "late": self.late,
            "future": self.future,
        }

    @classmethod
    def restore(cls, snap: dict[str, Any], where: str = "the recovery snapshot",
                spill: Spill | None = None) -> DedupWindow:
        check_key_version(snap, where)
        win = cls(0)
        win.window_us = snap["window_us"]
        win.lateness_us = snap["lateness_us"]
        win.max_event_us = snap["max_event_us"]
        win.main = snap["main"]
        if win.main is None:  # spilled: the level is in the file the snapshot names
            loaded = None if spill is None else spill.load(snap["main_file"], snap["main_size"])
            if loaded is None and spill is None:
                log.warning("%s names dedup file %s but no folder was given: resuming "
                            "without its keys", where, snap.get("main_file"))
            win.main = loaded if loaded is not None else (_EMPTY_K, _EMPTY_T)
        win.mid = snap["mid"]
        win.runs = list(snap["runs"])
        win.duplicates = snap["duplicates"]
        win.late = snap["late"]
        win.future = snap.get("future", 0)  # snapshots from before the clamp lack it
        return win


def snapshot_key_version(snap: dict[str, Any]) -> int:
    return int(snap.get("key_version", 1))


def check_key_version(snap: dict[str, Any], where: str) -> None:
    """Refuse a snapshot whose keys were hashed another way, with one line saying why and
    what to do (its keys cannot be re-hashed: only digests are kept)."""
    version = snapshot_key_version(snap)
    if version != KEY_VERSION:
        name = KEY_NAMES.get(version, f"version {version}")
        raise KeyVersionError(
            f"{where} holds dedup keys of version {version} ({name}) but this feedhouse "
            f"hashes keys with {KEY_NAMES[KEY_VERSION]} (version {KEY_VERSION}) and cannot "
            "convert digests: finish that run with the previous feedhouse, or move the "
            "recovery folder away to start with empty dedup windows (repeats across the "
            "restart are then left to insert tokens and ReplacingMergeTree)"
        )
