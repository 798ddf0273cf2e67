"""Core commands: init, sql."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum

import typer
from rich.table import Table

from feedhouse.app.cli.context import console, settings_from
from feedhouse.core.errors import FeedhouseError
from feedhouse.store.classify import first_line
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import init_schema, schema_script


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def tables_table(tables: list[tuple[str, str, str]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("database")
    table.add_column("table")
    table.add_column("engine")
    for database, name, engine in tables:
        table.add_row(database, name, engine)
    return table


def init(
    ctx: typer.Context,
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        metavar="NAME",
        help="ClickHouse cluster: DDL ON CLUSTER, Replicated*MergeTree local tables "
        "behind Distributed ones",
    ),
    print_only: bool = typer.Option(
        False, "--print", help="print the DDL (all migrations) instead of running it"
    ),
) -> None:
    """Apply the ClickHouse schema (safe to run twice)."""
    if print_only:
        typer.echo(schema_script(cluster=cluster), nl=False)
        return
    settings = settings_from(ctx)
    applied, tables = init_schema(settings, cluster)
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
