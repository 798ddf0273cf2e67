"""Resync requests: the book state (parse step) asks a feed's connection for a snapshot.

A sequence gap or checksum mismatch leaves a book unsynced; `request_resync(feed)` marks
the feed, and the WebSocket client's watchdog (`take_resync`, dataflows/sources/
websocket.py) reconnects, so the venue sends fresh snapshots on the new subscription.
Plain and import-free, so the source layer can ask without importing the book code.
"""

from __future__ import annotations

import threading

_RESYNC: set[str] = set()
_LOCK = threading.Lock()


def request_resync(feed: str) -> None:
    """Ask `feed`'s connection to resubscribe (a fresh snapshot); any thread."""
    with _LOCK:
        _RESYNC.add(feed)


def take_resync(feed: str) -> bool:
    """True once after `request_resync(feed)`."""
    if not _RESYNC:
        return False
    with _LOCK:
        if feed in _RESYNC:
            _RESYNC.discard(feed)
            return True
    return False
