"""The one way to insert rows: `insert_arrow(client, table, data, token)`.

Every insert carries an `insert_deduplication_token`, so a batch sent again after an
attempt that landed (a retry, a buffer replay) is dropped by ClickHouse.

A ClickHouse server gets clickhouse-connect's `insert_arrow` with the token as a query
setting. On an embedded store (chDB in this process) that call costs more than it must:
clickhouse-connect serialises the table into an Arrow file in Python bytes, writes them
to a temporary file and has chDB read it back with `INSERT ... FROM INFILE`, all on the
calling thread. Here the Arrow stream goes to chDB's streaming insert (`send_insert`) on
the client's own chDB connection instead: no file, the token in the statement's
SETTINGS, and chDB parses and writes the part on a thread of its own (the caller's
thread spends ~0.6 ms instead of ~7-11). Process CPU per insert: ~2 ms less at 1-5,000
rows, the same at 20,000+; most of an insert is chDB's own work, whichever way in
(bench/insert_paths.py measures each way; docs/performance.md has the figures).

That uses the client's chDB handle and its lock (clickhouse-connect 1.12's
`ChdbBackend`), so the call is serialised with the client's other calls exactly as
clickhouse-connect's own are; errors become the same `DatabaseError` with the
ClickHouse code that clickhouse-connect raises (`feedhouse.store.classify` reads it). A
client without that handle (another clickhouse-connect version) takes `insert_arrow`.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from feedhouse.core.sqlsafe import identifier

SETTING = re.compile(r"^[a-z_]{1,64}$")
# chDB copies each appended piece into bytes: in pieces, a large insert (a replay run, a
# backfill chunk) never holds a second full copy of its stream
CHUNK_BYTES = 4 << 20
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
    statement = (f"INSERT INTO {identifier(table)} ({columns}) "
                 f"SETTINGS {TOKEN} = {quote_string(token)}{more}")
    payload = _arrow_stream(data)
    backend._guard()  # closed client, or a stream of this thread still open
    with backend._handle.lock:
        backend._guard_locked()
        inserter = None
        try:
            inserter = backend._handle.conn.send_insert(statement, "ArrowStream")
            for start in range(0, len(payload), CHUNK_BYTES):
                inserter.append(payload[start:start + CHUNK_BYTES])
            inserter.finish()
        except Exception as exc:
            if inserter is not None:
                _cancel(inserter)
            raise backend._wrap_exception(exc) from exc


def is_embedded(client) -> bool:
    """The client runs chDB in this process (clickhouse-connect's ChdbClient)."""
    return type(client).__name__ == "ChdbClient"


def quote_string(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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


def _arrow_stream(data: pa.Table) -> memoryview:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return memoryview(sink.getvalue())


def _cancel(inserter) -> None:
    try:
        inserter.cancel()
    except Exception:  # the insert failed already; its error is the one to report
        pass
