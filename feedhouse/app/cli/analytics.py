"""`feedhouse analytics [NAME]`: list or run the shipped analytics queries."""

from __future__ import annotations

import typer
from rich.table import Table

from feedhouse.app import analytics as catalog
from feedhouse.app.cli.context import settings_from
from feedhouse.app.cli.output import OutputFormat, engine_message, print_rows, print_table
from feedhouse.core.errors import FeedhouseError, InputError, QueryError
from feedhouse.store.client import warehouse


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--param {item!r}: expected NAME=VALUE")
        pairs[name.strip()] = value.strip()
    return pairs


def analytics(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="query to run; omit to list them"),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="NAME=VALUE for a query parameter (repeatable)"
    ),
    output: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="table (whole cells, also when piped), csv or json lines"
    ),
    show_sql: bool = typer.Option(False, "--show-sql", help="print the SQL instead of running it"),
) -> None:
    """Run an analytics query from sql/analytics/ (VWAP, OHLCV, spreads, device health...)."""
    if name is None:
        table = Table(title="analytics queries (feedhouse analytics NAME)")
        for column in ("name", "question", "parameters (default)"):
            table.add_column(column)
        for query in catalog.catalog().values():
            params = ", ".join(f"{p.name}={p.default}" for p in query.params)
            table.add_row(query.name, query.question, params)
        print_table(table)
        return
    query = catalog.get(name)
    overrides = _pairs(param)
    if show_sql:
        query.parameters(overrides)  # still reject unknown or malformed parameters
        typer.echo(query.sql)
        return
    settings = settings_from(ctx)
    try:
        with warehouse(settings) as client:
            columns, rows = catalog.run(client, name, overrides)
    except FeedhouseError:
        raise
    except Exception as exc:
        raise QueryError(engine_message(exc)) from None
    print_rows(columns, rows, output)


def register(app: typer.Typer) -> None:
    app.command()(analytics)
