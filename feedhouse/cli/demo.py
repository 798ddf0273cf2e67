"""`feedhouse demo`: the main job on the embedded default."""

from __future__ import annotations

import typer

from feedhouse.cli.context import console, settings_from
from feedhouse.cli.core import init_schema, tables_table


def demo(ctx: typer.Context) -> None:
    """The main job on the embedded default, end to end."""
    settings = settings_from(ctx)
    applied, tables = init_schema(settings)
    console.print(f"warehouse: chDB store under {settings.home}")
    console.print(tables_table(tables, "feedhouse schema"))


def register(app: typer.Typer) -> None:
    app.command()(demo)
