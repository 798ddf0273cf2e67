"""Where the project's shipped files live (SQL, suites), installed or in a checkout."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # feedhouse/
PROJECT_ROOT = PACKAGE_ROOT.parent


def sql_dir() -> Path:
    """The `sql/` folder: migrations and analytics queries."""
    for candidate in (PACKAGE_ROOT / "sql", PROJECT_ROOT / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("feedhouse's sql/ folder is missing from this installation")


_INCLUDE = re.compile(r"\{\{\s*include\s+([\w./-]+)\s*\}\}")


def sql_text(path: Path) -> str:
    """A shipped query's text with each `{{ include <path under sql/> }}` replaced by that
    file (a piece several queries share, e.g. books/book_levels.sql). An include left
    unexpanded is not SQL, so a query read without this fails loudly instead of silently."""
    root = sql_dir()

    def expand(match: re.Match[str]) -> str:
        return "\n" + (root / match.group(1)).read_text().strip() + "\n"

    return _INCLUDE.sub(expand, Path(path).read_text())
