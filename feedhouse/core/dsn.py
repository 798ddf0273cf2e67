"""Warehouse DSNs: `chdb:///abs/dir` (embedded) or `http(s)://user:password@host:8123/db`.

Parsing and redaction live here, below the settings that validate a DSN and the client that
opens one.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit


def normalize_dsn(dsn: str) -> str:
    """Check a DSN and make chDB paths absolute. Raises ValueError naming the problem."""
    dsn = dsn.strip()
    if dsn.startswith("chdb:"):
        rest = dsn[len("chdb:") :]
        if rest.startswith("///"):
            path = rest[2:]
        elif rest.startswith("//"):
            # `chdb://relative` would be parsed as a host: resolve it as a path instead.
            path = str(Path(rest[2:]).expanduser().resolve())
        else:
            path = str(Path(rest).expanduser().resolve())
        if not path or path == "/":
            raise ValueError("chdb DSN needs a directory: chdb:///abs/dir")
        return f"chdb://{path}"
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with chdb:///, http:// or https://")
    if not parts.hostname:
        raise ValueError("has no host")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return dsn


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe for logs and messages.

    Everything up to the last '@' goes, so an unencoded '@' or '/' in the password cannot
    leave a piece of it behind; a `password=` query parameter is masked too."""
    dsn = re.sub(r"(://[^:/@]+:).*@", r"\1***@", dsn)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", dsn, flags=re.IGNORECASE)


def chdb_path(dsn: str) -> Path | None:
    return Path(dsn[len("chdb://") :]) if dsn.startswith("chdb://") else None
