"""Where the project's shipped files live (SQL, suites), installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # feedhouse/
PROJECT_ROOT = PACKAGE_ROOT.parent


def sql_dir() -> Path:
    """The `sql/` folder: migrations and analytics queries."""
    for candidate in (PACKAGE_ROOT / "sql", PROJECT_ROOT / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("feedhouse's sql/ folder is missing from this installation")
