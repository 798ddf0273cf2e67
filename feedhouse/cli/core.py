"""Core commands: init, sql."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum

import typer
from rich.table import Table

from feedhouse.cli.context import console, settings_from
from feedhouse.errors import FeedhouseError
from feedhouse.migrations import apply_migrations, list_tables
from feedhouse.warehouse import first_line, warehouse


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def init_schema(settings) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Apply pending migrations; return (applied files, all feedhouse tables)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    assert settings.recovery_dir is not None
    settings.recovery_dir.mkdir(parents=True, exist_ok=True)
    with warehouse(settings) as client:
        applied = apply_migrations(client)
        tables = list_tables(client)
    return applied, tables


def tables_table(tables: list[tuple[str, str, str]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("database")
    table.add_column("table")
    table.add_column("engine")
    for database, name, engine in tables:
        table.add_row(database, name, engine)
    return table


def init(ctx: typer.Context) -> None:
    """Apply the ClickHouse schema (safe to run twice)."""
    settings = settings_from(ctx)
    applied, tables = init_schema(settings)
    if applied:
        console.print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        console.print("schema up to date: nothing to apply")
    console.print(tables_table(tables, "feedhouse tables"))


def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="the SQL to run against the configured warehouse"),
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f"),
) -> None:
    """Query the configured warehouse."""
    settings = settings_from(ctx)
    try:
        with warehouse(settings) as client:
            result = client.query(query)
            columns, rows = list(result.column_names), result.result_rows
    except FeedhouseError:
        raise
    except Exception as exc:
        raise FeedhouseError(first_line(exc)) from None
    print_rows(columns, rows, output)


def print_rows(columns: list[str], rows: list, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        for row in rows:
            typer.echo(json.dumps(dict(zip(columns, row, strict=True)), default=str))
    elif output is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        writer.writerows(rows)
        typer.echo(buf.getvalue(), nl=False)
    else:
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(sql)
