"""Check a Bytewax recovery folder's dedup windows before `feedhouse run` resumes from it.

The dedup step's snapshots (`DedupWindow.snapshot`, pickled by Bytewax into the `snaps`
table of each `part-*.sqlite3`) name the version of their key hashes. A window hashed
another way cannot be converted (only digests are stored), and resuming with it would
let every repeat of a remembered record through: `feedhouse run` refuses to start with
one line naming the folder and what to do (`KeyVersionError`), before Bytewax loads it.
"""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

from dataflows.dedup.window import KEY_VERSION, check_key_version, snapshot_key_version

DEDUP_STEP = "dedup"  # the step name in dataflows/flow.py (ids are "<flow>.dedup")


def dedup_snapshots(folder: Path) -> dict[str, dict]:
    """{feed: newest dedup snapshot} over the recovery partitions in `folder`."""
    out: dict[str, tuple[int, dict]] = {}
    for part in sorted(Path(folder).glob("part-*.sqlite3")):
        con = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT state_key, snap_epoch, ser_change FROM snaps "
                "WHERE step_id LIKE ? AND ser_change IS NOT NULL",
                (f"%.{DEDUP_STEP}",),
            ).fetchall()
        except sqlite3.OperationalError:  # initialized, never snapshotted: no table yet
            rows = []
        finally:
            con.close()
        for key, epoch, blob in rows:
            if key not in out or epoch > out[key][0]:
                # our own state, written by Bytewax with pickle (trusted as the folder is)
                out[key] = (epoch, pickle.loads(blob))
    return {k: snap for k, (_, snap) in out.items() if isinstance(snap, dict)}


def check_recovery_keys(folder: Path) -> int:
    """Raise KeyVersionError for the first feed whose snapshot holds other keys; returns
    how many dedup snapshots were checked."""
    snaps = dedup_snapshots(folder)
    for feed, snap in sorted(snaps.items()):
        if snapshot_key_version(snap) != KEY_VERSION:
            check_key_version(snap, f"recovery folder {folder} (feed {feed})")
    return len(snaps)
