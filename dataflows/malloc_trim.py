"""Give glibc's freed-but-held memory back to the system, every `malloc_trim_every_s`.

Measured in a 30-minute soak at the demo's rates (docs/operations-soak.md): after warm-up
the memory glibc malloc's callers hold stayed flat (78-81 MB) while what glibc kept after
their frees rose from 14 to 53 MB, step by step, and with it the resident size. Python
frees frames, batches and Arrow inputs on other threads than the ones that allocated them,
so freed chunks scatter through the arenas' heaps; glibc returns a heap's memory only from
its top, so those pages stay resident. `malloc_trim(0)` releases every whole free page
inside the heaps (madvise) without moving anything: it costs one walk of the free lists
under the arenas' locks (a few ms), so it runs from a thread of its own every
half minute rather than after each batch.
"""

from __future__ import annotations

import ctypes
import threading


def _malloc_trim():
    try:
        fn = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _malloc_trim()


def trim() -> bool:
    """One `malloc_trim(0)`; True when glibc gave memory back (False: nothing to give, or
    not glibc)."""
    return bool(_TRIM is not None and _TRIM(0))


class MallocTrimmer:
    """A daemon thread calling `trim()` every `every_s` seconds until `stop()`."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="feedhouse-malloc-trim",
                                        daemon=True)

    def start(self) -> MallocTrimmer:
        if _TRIM is not None and self.every_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            trim()
