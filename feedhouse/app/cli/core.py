"""Core commands: init, sql."""

from __future__ import annotations

import typer
from rich.table import Table

from dataflows.venues.stored import convert_stored
from feedhouse.app.cli.context import console, settings_from
from feedhouse.app.cli.output import OutputFormat, engine_message, print_rows, print_table
from feedhouse.core.errors import FeedhouseError, QueryError
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import init_schema, schema_script


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
    converted: list = []  # the stored rows' conversion, after the migrations (not on a cluster)
    applied, tables = init_schema(settings, cluster,
                                  after=None if cluster else lambda c: converted.append(convert_stored(c)))
    if applied:
        console.print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        console.print("schema up to date: nothing to apply")
    for done in converted:
        if done.trades or done.quotes:
            console.print(f"converted stored contract sizes to BASE: {done.trades} trades, "
                          f"{done.quotes} quotes")
        if done.unknown or done.unpriced:
            console.print(done.unknown_line())
    print_table(tables_table(tables, "feedhouse tables"))


def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="the SQL to run against the configured warehouse"),
    output: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="table (whole cells, also when piped), csv or json lines"
    ),
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
        raise QueryError(engine_message(exc)) from None
    print_rows(columns, rows, output, exact=output is not OutputFormat.table)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(sql)
