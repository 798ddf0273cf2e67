"""The large level of a dedup window, kept in a file beside the recovery folder.

Bytewax pickles every active feed's dedup state into its recovery store each epoch (1 s).
The window's `main` level holds nearly all keys (16 bytes each) and changes only when the
`mid` level is merged into it (every main/8 new keys): pickling it every epoch cost
~15 ns per key, i.e. ~9 µs per trade in a steady 600 s window (every key is re-pickled
once a second for 600 s; 96 MB a second at 10k trades/s, measured with
bench/dedup_memory-sized windows). A spilled window's snapshot names the file holding
`main` instead; the file is written once per change of `main` (at the first snapshot after
it), fsynced before the snapshot is handed to Bytewax, so a committed snapshot never names
a file that is not complete on disk.

Files are `<folder>/dedup-<feed>-<ns>.keys` (keys then event times, little-endian). A
snapshot Bytewax has not committed yet may be superseded by a newer file: old files are
deleted only when newer `KEEP` generations exist and they are older than `KEEP_S`, so
the snapshot of the epoch a restart resumes from always finds its file.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_SPILL_KEYS = 65_536  # smaller main levels are pickled with the snapshot (<= 1 MB)
KEEP = 3
KEEP_S = 300.0


class Spill:
    """Writes and reads one feed's spilled main levels."""

    def __init__(self, folder: Path | str, feed: str) -> None:
        self.folder = Path(folder)
        self.prefix = "dedup-" + re.sub(r"[^\w.-]", "_", feed) + "-"
        self._written: tuple[np.ndarray, str] | None = None  # (keys array, file name)

    def save(self, keys: np.ndarray, ts: np.ndarray) -> str:
        """The file holding this (immutable) main level; written once per level."""
        if self._written is not None and self._written[0] is keys:
            return self._written[1]
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.prefix}{time.time_ns()}.keys"
        tmp = self.folder / (name + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(np.ascontiguousarray(keys, dtype="<u8").tobytes())
            fh.write(np.ascontiguousarray(ts, dtype="<i8").tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / name)
        self._written = (keys, name)
        self._prune(name)
        return name

    def load(self, name: str, size: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The level a snapshot names; None (logged) when its file is gone or short."""
        path = self.folder / name
        try:
            raw = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            log.warning("dedup window file %s unreadable (%s): resuming without its %d keys "
                        "(repeats of them are left to insert tokens and ReplacingMergeTree)",
                        path, exc, size)
            return None
        if raw.size != 16 * size:
            log.warning("dedup window file %s holds %d bytes, expected %d: resuming without "
                        "its keys", path, raw.size, 16 * size)
            return None
        keys = raw[: 8 * size].view("<u8").astype(np.uint64, copy=False)
        ts = raw[8 * size:].view("<i8").astype(np.int64, copy=False)
        self._written = (keys, name)
        return keys, ts

    def _prune(self, newest: str) -> None:
        start = len(self.prefix)
        files = sorted((p for p in self.folder.glob(self.prefix + "*.keys")
                        if p.stem[start:].isdigit()),  # not another feed's ("a" vs "a-b")
                       key=lambda p: int(p.stem[start:]))
        now = time.time()
        for path in files[:-KEEP]:
            if path.name == newest:
                continue
            try:
                if now - path.stat().st_mtime >= KEEP_S:
                    path.unlink()
            except OSError:
                pass
