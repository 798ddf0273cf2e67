"""Large Arrow inserts (backfill chunks, buffer drain) with a deduplication token.

clickhouse-connect's `insert_arrow` serialises the table into Python bytes; its chDB
backend then writes those bytes to a temporary file and runs `INSERT ... FROM INFILE`.
For hundreds of thousands of rows that costs as much as the insert itself, so on an
embedded store the Arrow stream is written to the temporary file by pyarrow directly
(no Python copy) and the same `INSERT ... FROM INFILE ... FORMAT ArrowStream` runs with
the token in its SETTINGS. A ClickHouse server gets `insert_arrow` as before. Either
way the rows, the token and so the deduplication are the same.
"""

from __future__ import annotations

import os
import re
import tempfile

import pyarrow as pa
import pyarrow.ipc as ipc

from feedhouse.core.sqlsafe import identifier

# FROM INFILE takes no server-side parameters, so the two values that go into the text
# (our temporary file's path and our own token) must be plain: else the portable path
SAFE_TEXT = re.compile(r"^[A-Za-z0-9_./:@+=-]{1,512}$")
SETTING = re.compile(r"^[a-z_]{1,64}$")


def is_embedded(client) -> bool:
    """The client runs chDB in this process (clickhouse-connect's ChdbClient)."""
    return type(client).__name__ == "ChdbClient"


def insert_arrow_bulk(client, table: str, data: pa.Table, token: str,
                      settings: dict[str, int] | None = None) -> None:
    """Insert `data` into `table` (database.table) under `insert_deduplication_token`,
    with further integer query `settings` if given."""
    extra = {k: int(v) for k, v in (settings or {}).items()}
    if not is_embedded(client) or not SAFE_TEXT.match(token) or not all(map(SETTING.match, extra)):
        client.insert_arrow(table, data, settings={"insert_deduplication_token": token, **extra})
        return
    fd, path = tempfile.mkstemp(prefix="feedhouse-insert-", suffix=".arrows")
    try:
        with os.fdopen(fd, "wb") as handle, ipc.new_stream(handle, data.schema) as writer:
            writer.write_table(data)
        if not SAFE_TEXT.match(path):
            client.insert_arrow(table, data, settings={"insert_deduplication_token": token, **extra})
            return
        columns = ", ".join(identifier(c) for c in data.column_names)
        more = "".join(f", {k} = {v}" for k, v in extra.items())
        client.command(
            f"INSERT INTO {identifier(table)} ({columns}) FROM INFILE '{path}' "
            f"SETTINGS insert_deduplication_token = '{token}'{more} FORMAT ArrowStream"
        )
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
