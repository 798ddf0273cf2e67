"""The embedded store's inter-process lock.

chDB lets one process open a store directory at a time, so every use holds an
`fcntl.flock` on `<dir>.lock`. Holding it twice in one thread would deadlock, so that
raises WarehouseNested. Other threads of the same process queue on an in-process lock
first (flock does not order threads of one process reliably). A waiter touches
`<dir>.want` so a long-running holder lets go soon.

A demo, a drill or `init` also *claims* the store (`claim_store`/`store_claim`: a flock on
`<dir>.owner` held for the whole command), so a second one says in one line which process
holds it instead of wiping or writing a store in use.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from feedhouse.core.errors import WarehouseBusy, WarehouseNested

_process_lock = threading.Lock()
_held = threading.local()


def _lock_holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def store_lock(store: Path, timeout_s: float) -> Iterator[None]:
    """Hold the store's inter-process lock; raise WarehouseBusy after timeout_s."""
    if getattr(_held, "depth", 0):
        raise WarehouseNested(
            f"the chDB store {store} is already open in this thread; "
            "close it before opening it again"
        )
    deadline = time.monotonic() + timeout_s
    if not _process_lock.acquire(blocking=False):
        want_file(store).touch()  # another thread holds it: ask it to let go
        acquired = _process_lock.acquire(timeout=timeout_s)
    else:
        acquired = True
    if not acquired:
        raise WarehouseBusy(
            f"chDB store {store} busy: another thread of this process held it {timeout_s:g}s"
        )
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        lock_path = Path(f"{store}.lock")
        want_path = want_file(store)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            delay = 0.002
            waited = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if waited:
                        want_path.unlink(missing_ok=True)
                    break
                except BlockingIOError:
                    # Tell a long-running holder (HeldWarehouse) that someone waits.
                    waited = True
                    if not want_path.exists():
                        want_path.touch()
                    if time.monotonic() >= deadline:
                        want_path.unlink(missing_ok=True)
                        holder = _lock_holder(lock_path)
                        raise WarehouseBusy(
                            f"chDB store {store} busy for {timeout_s:g}s: held by {holder} "
                            f"(lock file {lock_path})"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.02)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} ({_process_name()})".encode(), 0)
            _held.depth = 1
            try:
                yield
            finally:
                _held.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        _process_lock.release()


_claims: dict[Path, int] = {}


def _lock_pid(holder: str) -> int | None:
    match = re.match(r"pid (\d+)", holder)
    return int(match.group(1)) if match else None


def _ancestors() -> set[int]:
    """Our parent processes (a demo's or drill's children work on the store it claimed)."""
    found, pid = set(), os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        found.add(pid)
    return found


def _claim(store: Path, what: str) -> int | None:
    """flock `<store>.owner` (our pid written inside); its fd, or None when a parent of
    ours holds it; WarehouseBusy naming the holder when another process does."""
    store.parent.mkdir(parents=True, exist_ok=True)
    owner = Path(f"{store}.owner")
    fd = os.open(owner, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = _lock_holder(owner)
        if _lock_pid(holder) in _ancestors():
            return None
        raise WarehouseBusy(
            f"store {store} is in use by {holder}: {what} will not touch it; "
            "wait for that process or set FEEDHOUSE_HOME to another folder"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} ({_process_name()})".encode(), 0)
    return fd


def claim_store(store: Path, what: str) -> None:
    """Claim the embedded store for the rest of this process (a demo, a drill) before
    wiping or writing it; raise WarehouseBusy at once, one line naming the holder's pid,
    when another process claimed it. The claim is an `fcntl.flock` on `<store>.owner`
    (holder's pid written inside), dropped by the kernel when the process ends; the
    per-use lock (`store_lock`) still orders each open. Children of the claimant (its
    `feedhouse run`) pass. Claiming twice in one process is a no-op."""
    store = store.resolve()
    if store not in _claims:
        fd = _claim(store, what)
        if fd is not None:
            _claims[store] = fd


@contextmanager
def store_claim(store: Path, what: str) -> Iterator[None]:
    """claim_store for the duration of a block (`feedhouse init`)."""
    store = store.resolve()
    fd = None if store in _claims else _claim(store, what)
    try:
        yield
    finally:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def want_file(store: Path) -> Path:
    """Exists while some process waits for the store: holders should let go soon."""
    return Path(f"{store}.want")


def _process_name() -> str:
    try:
        raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
        text = " ".join(p.decode(errors="replace") for p in raw.split(b"\0")[:3] if p)
        return " ".join(text.split())[:120]  # one line, even for `python -c SCRIPT`
    except OSError:
        return "?"
