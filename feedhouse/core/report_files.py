"""Where reports and Data Docs of a store go, so two stores never overwrite each other.

The default reports folder is `<home>/reports` (the store's home). A report describes one
warehouse: when `warehouse_dsn` is the home's own store (`chdb://<home>/clickhouse`),
files keep their plain names (`audit-2026-12-01.html`, `data_docs/`); for any other
warehouse they carry a tag naming it (`audit-2026-12-01.drill-store-1a2b3c4d.html`,
`data_docs.drill-store-1a2b3c4d/`): the store folder's name or the server's host, port
and database, plus a short hash of the warehouse's address (store path, or scheme, host,
port and database: not the user, so Dagster's and the backfill's users, which reach the
same warehouse, write the same files), so two warehouses whose names look alike still get
their own files and no secret reaches a file name.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from feedhouse.core.settings import Settings


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "warehouse"


def _address(dsn: str) -> str:
    """The warehouse a DSN reaches, without user or password."""
    if dsn.startswith("chdb://"):
        return dsn
    parts = urlsplit(dsn)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}/{parts.path.strip('/') or 'default'}"


def warehouse_tag(settings: Settings) -> str | None:
    """None for the home's own store; else a file-name-safe name of the warehouse."""
    dsn = settings.dsn
    if dsn == f"chdb://{settings.home / 'clickhouse'}":
        return None
    digest = hashlib.blake2b(_address(dsn).encode(), digest_size=4).hexdigest()
    if dsn.startswith("chdb://"):
        name = Path(dsn[len("chdb://"):]).name
    else:
        parts = urlsplit(dsn)
        database = parts.path.strip("/") or "default"
        name = f"{parts.hostname or 'server'}-{parts.port or ''}-{database}"
    return f"{_slug(name)}-{digest}"


def report_path(settings: Settings, day: date) -> Path:
    tag = warehouse_tag(settings)
    suffix = f".{tag}" if tag else ""
    return settings.reports_dir / f"audit-{day.isoformat()}{suffix}.html"


def data_docs_dir(settings: Settings) -> Path:
    tag = warehouse_tag(settings)
    return settings.reports_dir / (f"data_docs.{tag}" if tag else "data_docs")
