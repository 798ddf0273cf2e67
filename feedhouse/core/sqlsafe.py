"""SQL identifiers that come from settings or files, checked against an allow-list.

Values never go into SQL text: they travel as clickhouse-connect server-side parameters
(`{name:Type}` in the statement, `parameters={...}` on the call). Identifiers (database,
table and column names) cannot be parameters, so any that is not a literal in our own
code passes through `identifier()` first: plain ASCII names, optionally `database.table`,
nothing that could close a quote, start a comment or end a statement.
"""

from __future__ import annotations

import re

from feedhouse.core.errors import SettingsError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


def identifier(name: str, what: str = "identifier") -> str:
    """`name` unchanged when it is a safe (optionally qualified) identifier; otherwise
    SettingsError naming `what` (e.g. "setting 'buffer_table'"), with the name escaped."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise SettingsError(
            f"{what}: {name!r} is not a plain SQL identifier "
            "(letters, digits, '_', optionally database.table)"
        )
    return name


def table_name(database: str, table: str) -> str:
    """`database.table` from two checked parts."""
    return identifier(f"{identifier(database)}.{identifier(table)}")


def string_literal(text: str) -> str:
    """A ClickHouse string literal of `text` (backslashes and quotes escaped), for the few
    statements that cannot take server-side parameters (FROM INFILE, SETTINGS, the
    multiIf tables built from instrument specs)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
