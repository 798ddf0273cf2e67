"""Where the tests find the project, the recorded sessions and their golden files."""

from __future__ import annotations

import sys
from pathlib import Path

from feedhouse.app.sessions import SESSIONS_DIR

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = SESSIONS_DIR  # the recorded sessions the app ships (package data)
VENUE_DOCS = ROOT / "tests" / "fixtures" / "venue_docs"  # captures built from API docs
GOLDEN = ROOT / "tests" / "golden"
FEEDHOUSE = str(Path(sys.executable).parent / "feedhouse")


def corpus(name: str) -> Path:
    """A capture by name: `docs/X` is a documented-example capture, others recorded ones."""
    if name.startswith("docs/"):
        return VENUE_DOCS / name.removeprefix("docs/")
    return SESSIONS / name
