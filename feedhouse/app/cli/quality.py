"""`feedhouse check` and `feedhouse report`: the data-quality job and the audit report,
run once from the shell with the same functions the Dagster job and schedule call."""

from __future__ import annotations

import json
from datetime import date

import typer
from rich.table import Table

from feedhouse.app.cli.context import console, settings_from
from feedhouse.app.cli.output import print_table
from feedhouse.core.errors import InputError
from quality.report import build_report
from quality.runner import run_quality
from quality.window import Window


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--date {text!r}: expected YYYY-MM-DD") from None


def check(
    ctx: typer.Context,
    minutes: int | None = typer.Option(
        None,
        "--minutes",
        "-m",
        min=1,
        help="window: the last N minutes (default quality.window_minutes)",
    ),
    day: str | None = typer.Option(None, "--date", help="check one day (YYYY-MM-DD) instead"),
    venue: str = typer.Option("", "--venue", help="with --date: one backfill partition"),
    suite: list[str] = typer.Option(None, "--suite", "-s", help="only these suites"),
    docs: bool = typer.Option(True, "--docs/--no-docs", help="build Data Docs"),
) -> None:
    """Run the Great Expectations suites on a window; exit 1 when an ERROR check fails."""

    settings = settings_from(ctx)
    parsed = _day(day)
    if venue and parsed is None:
        raise InputError("--venue needs --date (a backfill partition is one day of one venue)")
    if parsed is not None:
        window = Window.partition(parsed, venue)
    else:
        window = Window.last_minutes(minutes or settings.quality.window_minutes)
    run = run_quality(settings, window, suite or None, venue_only=bool(venue), docs=docs)
    table = Table(title=f"quality {window.label()}")
    for column in ("suite", "table", "rows", "expectations", "ERROR failed", "WARN failed"):
        table.add_column(column)
    for res in run.results:
        warns = len(res.failed) - len(res.errors)
        table.add_row(
            res.suite.name, res.suite.table, f"{res.rows:,}", str(len(res.outcomes)),
            f"[red]{len(res.errors)}[/]" if res.errors else "0",
            f"[yellow]{warns}[/]" if warns else "0",
        )  # fmt: skip
    print_table(table)
    for res in run.results:
        for out in res.failed:
            console.print(
                f"[{'red' if out.severity == 'ERROR' else 'yellow'}]{out.severity}[/] "
                f"{res.suite.name}: {out.expectation}: {out.unexpected_count} rows",
                highlight=False,
            )
            for key in out.sample[:3]:
                console.print(f"    {json.dumps(key)}", highlight=False, soft_wrap=True)
    if run.docs_index is not None:
        typer.echo(f"Data Docs: {run.docs_index}")  # plain: a path must not be wrapped
    console.print(
        ("ok: " if run.ok else "ERROR: ") + run.summary().splitlines()[0].split(": ", 1)[1]
    )
    if not run.ok:
        raise typer.Exit(1)


def report(
    ctx: typer.Context,
    day: str | None = typer.Option(
        None, "--date", metavar="YYYY-MM-DD", help="the UTC day to report (default today)"
    ),
    allow_incomplete: bool = typer.Option(
        False, "--allow-incomplete", help="exit 0 even when the day is not complete"
    ),
) -> None:
    """Write the day's self-contained audit report (HTML) and print its verdict; exit 1
    when the day is not complete (cron can alert on it)."""

    settings = settings_from(ctx)
    built = build_report(settings, _day(day))
    verdict = "[green]complete[/]" if built.complete else "[red]NOT complete[/]"
    console.print(f"{built.data.day.isoformat()}: {verdict}")
    for problem in built.data.problems():
        console.print(f"  - {problem}")
    typer.echo(f"report: {built.path}")
    if not built.complete and not allow_incomplete:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(check)
    app.command()(report)
