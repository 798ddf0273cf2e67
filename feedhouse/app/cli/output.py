"""Command output that fits where it goes: a terminal, a pipe, a file, cron.

Rich shapes a table to the terminal's width and, when stdout is no terminal, to 80
columns, cutting cells to `binan…`. Here a table printed to a pipe or file gets the width
it needs, so every cell is whole; on a terminal Rich shapes it as usual. Floats are shown
rounded to 10 significant digits, never in scientific notation (`9480.22`, not
`9480.219999999992`; `0.00001`, not `9.999999999999593e-06`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from decimal import Decimal
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from feedhouse.app.cli.context import console
from feedhouse.store.classify import first_line

SIGNIFICANT = 10


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def tidy(value: Any) -> Any:
    """A float rounded to SIGNIFICANT digits (float noise gone); other values as they are."""
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return float(f"{value:.{SIGNIFICANT}g}")
    if isinstance(value, list | tuple):  # Array(Float64) columns, e.g. quantiles
        return [tidy(v) for v in value]
    return value


def shown(value: Any) -> str:
    """A cell's text: floats tidied and written out in plain decimal notation."""
    if isinstance(value, float) and math.isfinite(value):
        text = format(Decimal(repr(tidy(value))), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text or "0"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if value is None:
        return ""
    return str(value)


# what the client appends to the user's query and the engine then quotes back
_CLIENT_FORMAT = re.compile(r"\s+FORMAT\s+(Native|Arrow\w*|TabSeparated\w*|JSON\w*|RowBinary\w*)\b")
_EXPECTED = re.compile(r"(Expected one of: )([^.]*)")


def engine_message(exc: BaseException) -> str:
    """ClickHouse's message about the user's query, in one line, without what the client
    added (`FORMAT Native`) and with a long 'Expected one of' list cut short."""
    text = _CLIENT_FORMAT.sub("", first_line(exc))

    def _short(match: re.Match) -> str:
        items = match.group(2).split(", ")
        more = f", ... ({len(items) - 8} more)" if len(items) > 8 else ""
        return match.group(1) + ", ".join(items[:8]) + more

    return _EXPECTED.sub(_short, text)


def print_table(table: Table, target: Console | None = None) -> None:
    """Print `table` whole: at its natural width when stdout is not a terminal."""
    target = target or console
    if target.is_terminal:
        target.print(table)
        return
    width = target.measure(table, options=target.options.update(max_width=100_000)).maximum
    wide = Console(file=target.file, width=max(width, target.width), force_terminal=False,
                   no_color=True, highlight=False, soft_wrap=False)
    wide.print(table)


def print_rows(columns: list[str], rows: list, output: OutputFormat, exact: bool = False) -> None:
    """Query results as a table, CSV or JSON lines, floats tidied (`exact`: csv and json
    keep every digit the engine returned, for `feedhouse sql` into another program)."""
    keep = (lambda v: v) if exact else tidy
    if output is OutputFormat.json:
        for row in rows:
            record = {c: keep(v) for c, v in zip(columns, row, strict=True)}
            typer.echo(json.dumps(record, default=str))
    elif output is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        writer.writerows(row if exact else [shown(v) for v in row] for row in rows)
        typer.echo(buf.getvalue(), nl=False)
    else:
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(shown(v) for v in row))
        print_table(table)
