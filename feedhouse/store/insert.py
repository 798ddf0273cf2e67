"""The one way to insert rows: `insert_arrow(client, table, data, token)`.

Every insert carries an `insert_deduplication_token`, so a batch sent again after an
attempt that landed (a retry, a buffer replay) is dropped by ClickHouse.

A ClickHouse server gets clickhouse-connect's `insert_arrow` with the token as a query
setting. On an embedded store (chDB in this process) that call serialises the table into
an Arrow file in Python bytes, writes them to a temporary file and has chDB read it with
`INSERT ... FROM INFILE`. Here pyarrow writes the Arrow stream straight into the
temporary file and the same statement runs on the client's own chDB connection: no
Python copy of the rows, no client layers. bench/insert_paths.py measured every way in
(docs/performance.md): the process CPU of an insert is chDB's own work and the same
within ~1 ms whichever way up to 50,000 rows; chDB's streaming insert (`send_insert`)
moved that work off the calling thread but cost twice the CPU per row in buffer
replays (1.2-1.7 vs 0.6 µs/row), so it is not used.

The statement runs under the client's handle lock (clickhouse-connect 1.12's
`ChdbBackend`), serialised with the client's other calls exactly as clickhouse-connect's
own are; errors become the same `DatabaseError` with the ClickHouse code that
clickhouse-connect raises (`feedhouse.store.classify` reads it). A client without that
handle (another clickhouse-connect version) takes `insert_arrow`.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from feedhouse.core.sqlsafe import identifier, string_literal

SETTING = re.compile(r"^[a-z_]{1,64}$")
TOKEN = "insert_deduplication_token"


def insert_arrow(client, table: str, data: pa.Table, token: str,
                 settings: dict[str, int] | None = None) -> None:
    """Insert `data` into `table` (database.table) under the deduplication `token`, with
    further integer query `settings` if given."""
    extra = {_setting_name(k): int(v) for k, v in (settings or {}).items()}
    backend = _chdb_backend(client)
    if backend is None:
        client.insert_arrow(table, data, settings={TOKEN: token, **extra})
        return
    columns = ", ".join(identifier(c) for c in data.column_names)
    more = "".join(f", {k} = {v}" for k, v in extra.items())
    statement = f"INSERT INTO {identifier(table)} ({columns})"
    fd, path = tempfile.mkstemp(prefix="feedhouse-insert-", suffix=".arrows")
    try:
        with os.fdopen(fd, "wb") as handle, ipc.new_stream(handle, data.schema) as writer:
            writer.write_table(data)
        sql = (f"{statement} FROM INFILE {string_literal(path)} "
               f"SETTINGS {TOKEN} = {string_literal(token)}{more} FORMAT ArrowStream")
        backend._guard()  # closed client, or a stream of this thread still open
        with backend._handle.lock:
            backend._guard_locked()
            try:
                backend._handle.conn.query(sql, "TabSeparated")
            except Exception as exc:
                raise backend._wrap_exception(exc) from exc
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def is_embedded(client) -> bool:
    """The client runs chDB in this process (clickhouse-connect's ChdbClient)."""
    return type(client).__name__ == "ChdbClient"


def _chdb_backend(client) -> Any | None:
    """clickhouse-connect's ChdbBackend of an embedded client, if it has the parts used
    here; None for a server client."""
    if not is_embedded(client):
        return None
    backend = getattr(client, "_backend", None)
    handle = getattr(backend, "_handle", None)
    if handle is None or not all(hasattr(backend, a) for a in ("_guard", "_guard_locked",
                                                               "_wrap_exception")):
        return None
    return backend


def _setting_name(name: str) -> str:
    if not SETTING.match(name):
        raise ValueError(f"not a setting name: {name!r}")
    return name
