"""Recorded exchange WebSocket sessions (package data) that the session server plays for
the demo, the drills and the benchmarks; see README.md here for provenance."""

from pathlib import Path

SESSIONS_DIR = Path(__file__).resolve().parent
REST_DIR = SESSIONS_DIR / "rest"  # recorded REST replies (symbol lists)
