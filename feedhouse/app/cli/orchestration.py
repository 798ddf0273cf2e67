"""`feedhouse audit`, `reconcile`, `backfill`, `candles`: the Dagster jobs' logic, run once
from the shell.

They call the same functions the Dagster assets call (feedhouse.verify.audit, .reconcile,
.backfill), print a rich table of what they found and exit 1 on a mismatch.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dataflows.venues import VENUES
from feedhouse.app.cli.context import console, err_console, settings_from
from feedhouse.app.cli.output import print_table
from feedhouse.core.errors import FeedhouseError, InputError
from feedhouse.store.candles import build_minutes, candle_checks, trade_minutes
from feedhouse.store.classify import first_line
from feedhouse.store.client import warehouse
from feedhouse.verify.audit import DEFAULT_GRACE_S, run_audit
from feedhouse.verify.backfill import archive_plan, backfill_day, day_rows, days_between, verify_day
from feedhouse.verify.backfill_books import backfill_books_day
from feedhouse.verify.reconcile import latest_reconciliations
from feedhouse.verify.reconcile import reconcile as reconcile_replays
from quality.runner import PartitionCheckFailed, check_partition

FIRST_N = 5


@contextmanager
def _store(settings) -> Iterator:
    """The warehouse, with ClickHouse errors as one line (e.g. a store without the schema)."""
    try:
        with warehouse(settings) as client:
            yield client
    except FeedhouseError:
        raise
    except Exception as exc:
        hint = " (run `feedhouse init` first?)" if "does not exist" in str(exc) else ""
        raise FeedhouseError(first_line(exc) + hint) from None


def _hhmm(values) -> str:
    shown = ", ".join(v.strftime("%Y-%m-%d %H:%M") for v in values[:FIRST_N])
    return shown + (f" (+{len(values) - FIRST_N})" if len(values) > FIRST_N else "")


def audit(
    ctx: typer.Context,
    full: bool = typer.Option(False, "--all", help="re-audit every closed minute, not only new ones"),
    grace_s: float = typer.Option(
        DEFAULT_GRACE_S, "--grace-s", help="minutes younger than this are still open (not audited)"
    ),
) -> None:
    """Row-count audit: ledger vs table per feed and closed minute (ops.row_count_audit)."""
    settings = settings_from(ctx)
    kinds = {f.name: f.kind for f in settings.feeds}
    with _store(settings) as client:
        result = run_audit(client, kinds=kinds, full=full, grace_s=grace_s)
    if not result.minutes:
        console.print(f"nothing to audit: every minute closed before {result.cutoff:%H:%M} UTC is audited and ok")
        return
    table = Table(title=f"row-count audit (minutes closed before {result.cutoff:%Y-%m-%d %H:%M} UTC)")
    for column in ("feed", "table", "minutes", "ok", "missing", "extra", "ledger rows", "table rows"):
        table.add_column(column, justify="right" if column not in ("feed", "table") else "left")
    summaries = result.by_feed()
    for s in summaries:
        table.add_row(s.feed, s.table_name, str(s.minutes), str(s.ok), str(s.missing), str(s.extra),
                      str(s.ledger_rows), str(s.table_rows), style=None if not s.bad_minutes else "red")
    print_table(table)
    for s in summaries:
        if s.bad_minutes:
            console.print(f"[red]{s.feed}: minutes that disagree: {_hhmm(s.bad_minutes)}[/red]")
    if not result.ok:
        raise typer.Exit(1)


def reconcile(
    ctx: typer.Context,
    replay_id: str | None = typer.Option(None, "--replay-id", help="reconcile this replay (again)"),
    settle_s: float = typer.Option(
        0.0, "--settle-s", help="skip replays that finished less than this many seconds ago"
    ),
) -> None:
    """Reconcile finished buffer replays: buffered = replayed = new rows (ops.reconciliation)."""
    settings = settings_from(ctx)
    kinds = {f.name: f.kind for f in settings.feeds}
    title = "replay reconciliation"
    with _store(settings) as client:
        results = reconcile_replays(client, replay_id=replay_id, kinds=kinds, settle_s=settle_s)
        if not results:  # nothing new: show what the earlier reconciliations found
            results = latest_reconciliations(client)
            title = "latest reconciliations (no replay waiting)"
    if not results:
        console.print("no finished replay in ops.replay_log: nothing to reconcile")
        return
    table = Table(title=title)
    for column in ("replay", "feed", "event range", "buffered", "replayed", "new rows", "status"):
        table.add_column(column)
    for r in results:
        table.add_row(r.replay_id, r.feed, f"{r.range_start:%H:%M:%S}-{r.range_end:%H:%M:%S}",
                      str(r.buffered_rows), str(r.replayed_rows), str(r.table_rows), r.status,
                      style=None if r.ok else "red")
    print_table(table)
    for r in results:
        style = "green" if r.ok else "red"
        console.print(f"[{style}]{r.replay_id} {r.status}:[/{style}] {escape(r.explanation)}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--{name} {text!r}: expected a date like 2024-01-15") from None


def _backfill_meter(stack: ExitStack) -> Callable[[str, int, int], None] | None:
    """A rich progress bar with rows/s when stdout is a terminal (None otherwise)."""
    if not console.is_terminal:
        return None
    bar = stack.enter_context(Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("rows"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
        console=console, transient=True,
    ))
    tasks: dict[str, tuple[object, float]] = {}

    def meter(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = (bar.add_task(name, total=total or 1, rate=""), time.perf_counter())
        task, started = tasks[name]
        elapsed = time.perf_counter() - started
        rate = f"{done / elapsed:,.0f} rows/s" if elapsed > 0 and done else ""
        bar.update(task, completed=done, total=total or 1, rate=rate)

    return meter


def backfill(
    ctx: typer.Context,
    venue: str = typer.Option(..., "--venue", help="venue to backfill, e.g. binance"),
    start: str = typer.Option(..., "--start", help="first day (YYYY-MM-DD, UTC)"),
    end: str | None = typer.Option(None, "--end", help="last day, inclusive (default: --start)"),
    archive: Path | None = typer.Option(None, "--archive", help="archive folder (default: setting archive_dir)"),
    books: bool = typer.Option(False, "--books", help="load Tardis.dev incremental_book_L2 files "
                               "into market.book_updates instead of trades"),
) -> None:
    """Load archive files (Binance daily dumps, Tardis.dev trades, captures) into market.trades,
    idempotently. Applies pending migrations first; exits 1 when no file matches a day."""

    settings = settings_from(ctx).for_backfill()
    if venue not in VENUES:
        raise InputError(f"unknown venue {venue!r} (known: {', '.join(sorted(VENUES))})")
    first, last = _day(start, "start"), _day(end, "end") if end else _day(start, "start")
    if last < first:
        raise InputError("--end is before --start")
    folder = archive or settings.archive_dir
    if folder is None:
        raise InputError("no archive folder: pass --archive DIR or set archive_dir")
    if books:
        _backfill_books(settings, venue, days_between(first, last), folder)
        return
    plan = archive_plan(folder, venue, days_between(first, last))  # fails fast: no file, exit 1
    table = Table(title=f"backfill {venue} from {folder}")
    for column in ("day", "files", "read", "inserted", "already stored", "repeated", "invalid",
                   "day rows", "rows/s", "ledger", "quality"):
        table.add_column(column, justify="left" if column in ("day", "audit") else "right")
    failed = False
    empty_days: list[str] = []
    with ExitStack() as stack:
        meter = _backfill_meter(stack)
        for day, files in plan.items():
            result = backfill_day(lambda: _store(settings), venue, day, folder, files=files,
                                  meter=meter,
                                  progress=None if meter else lambda msg: err_console.print(f"[dim]{msg}[/dim]"))
            with _store(settings) as client:
                stored = day_rows(client, venue, day)
                bad = verify_day(client, result)
            day_failed = bool(bad)
            verdict = "ok" if not bad else f"mismatch: {_hhmm([m.minute for m in bad])}"
            quality = "-"
            if stored:

                try:
                    check_partition(settings, day, venue, docs=False)
                    quality = "ok"
                except PartitionCheckFailed as exc:
                    day_failed, quality = True, f"failed: {exc}"
            for empty in result.empty_files:
                err_console.print(f"[yellow]{day}: {Path(empty.path).name} holds no {venue} trade of "
                                  f"{day}[/yellow]")
            if not result.total("read"):
                day_failed = True
                empty_days.append(day.isoformat())
            failed |= day_failed
            table.add_row(day.isoformat(), str(len(result.files)), str(result.total("read")),
                          str(result.total("inserted")), str(result.total("existing")),
                          str(result.total("repeated")), str(result.total("invalid")), str(stored),
                          f"{result.rows_per_s:,.0f}", verdict, quality,
                          style="red" if day_failed else None)
            err_console.print(f"[dim]{day}: done in {result.seconds:.1f}s, "
                              f"{result.rows_per_s:,.0f} rows/s[/dim]")
    print_table(table)
    if empty_days:
        console.print(f"[red]no {venue} trade in the archive files of {', '.join(empty_days)} "
                      f"under {folder}[/red]")
    if failed:
        raise typer.Exit(1)


def _backfill_books(settings, venue: str, days: list[date], folder: Path) -> None:
    """`backfill --books`: each day's Tardis book files, then the audit of the day's feed."""
    table = Table(title=f"backfill {venue} books from {folder}")
    for column in ("day", "files", "read", "inserted", "already stored", "repeated", "ledger"):
        table.add_column(column, justify="left" if column == "day" else "right")
    failed = False
    for day in days:
        result = backfill_books_day(lambda: _store(settings), venue, day, folder)
        with _store(settings) as client:
            bad = verify_day(client, result)
        failed |= bool(bad)
        table.add_row(day.isoformat(), str(len(result.files)), str(result.total("read")),
                      str(result.total("inserted")), str(result.total("existing")),
                      str(result.total("repeated")),
                      "ok" if not bad else f"mismatch: {_hhmm([m.minute for m in bad])}",
                      style="red" if bad else None)
    print_table(table)
    if failed:
        raise typer.Exit(1)


def candles(
    ctx: typer.Context,
    start: str = typer.Option(..., "--start", help="first day to rebuild (YYYY-MM-DD, UTC)"),
    end: str = typer.Option(None, "--end", help="last day, inclusive (default: --start)"),
) -> None:
    """Rebuild the 1-minute candles of these days from the distinct trades, then prove them.

    The audit reports a wrong candle; `run` rebuilds a minute only when a trade arrives for
    it. This rebuilds every minute of the days that holds trades (idempotent), whatever
    happened to the table, and exits 1 if a candle still disagrees with its trades."""
    settings = settings_from(ctx)
    first = _day(start, "start")
    last = _day(end, "end") if end else first
    if last < first:
        raise InputError(f"--end {last} is before --start {first}")
    lo = calendar.timegm(first.timetuple())
    hi = calendar.timegm(last.timetuple()) + 86_400
    with _store(settings) as client:
        minutes = trade_minutes(client, lo, hi)
        build_minutes(client, minutes)
        checks = candle_checks(client, lo, hi)
    bad = [c for c in checks if not c.ok]
    console.print(f"candles: {len(minutes)} minute(s) with trades rebuilt from {first} to {last}; "
                  f"{len(checks) - len(bad)} venue-symbol-minutes agree with their trades", soft_wrap=True)
    for c in bad[:FIRST_N]:
        console.print(f"[red]{c.venue} {c.symbol} {time.strftime('%Y-%m-%d %H:%M', time.gmtime(c.minute))}: "
                      f"candle {c.candle_trades} trades, table {c.distinct_trades} ({c.status})[/red]",
                      soft_wrap=True)
    if bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("candles")(candles)
    app.command("audit")(audit)
    app.command("reconcile")(reconcile)
    app.command("backfill")(backfill)
