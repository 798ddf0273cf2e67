"""`feedhouse audit`, `reconcile`, `backfill`: the Dagster jobs' logic, run once from the shell.

They call the same functions the Dagster assets call (feedhouse.verify.audit, .reconcile,
.backfill), print a rich table of what they found and exit 1 on a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from dataflows.venues import VENUES
from feedhouse.app.cli.context import console, err_console, settings_from
from feedhouse.app.cli.output import print_table
from feedhouse.core.errors import FeedhouseError, InputError
from feedhouse.store.classify import first_line
from feedhouse.store.client import warehouse
from feedhouse.verify.audit import DEFAULT_GRACE_S, run_audit
from feedhouse.verify.backfill import backfill_day, day_rows, verify_day
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


def backfill(
    ctx: typer.Context,
    venue: str = typer.Option(..., "--venue", help="venue to backfill, e.g. binance"),
    start: str = typer.Option(..., "--start", help="first day (YYYY-MM-DD, UTC)"),
    end: str | None = typer.Option(None, "--end", help="last day, inclusive (default: --start)"),
    archive: Path | None = typer.Option(None, "--archive", help="archive folder (default: setting archive_dir)"),
) -> None:
    """Load archive files (captures, Binance daily dumps) into market.trades, idempotently."""

    settings = settings_from(ctx).for_backfill()
    if venue not in VENUES:
        raise InputError(f"unknown venue {venue!r} (known: {', '.join(sorted(VENUES))})")
    first, last = _day(start, "start"), _day(end, "end") if end else _day(start, "start")
    if last < first:
        raise InputError("--end is before --start")
    folder = archive or settings.archive_dir
    if folder is None:
        raise InputError("no archive folder: pass --archive DIR or set archive_dir")
    table = Table(title=f"backfill {venue} from {folder}")
    for column in ("day", "files", "read", "inserted", "already stored", "repeated", "invalid",
                   "day rows", "ledger", "quality"):
        table.add_column(column, justify="left" if column in ("day", "audit") else "right")
    failed = False
    day = first
    while day <= last:
        started = datetime.now()
        result = backfill_day(lambda: _store(settings), venue, day, folder,
                              progress=lambda msg: err_console.print(f"[dim]{msg}[/dim]"))
        with _store(settings) as client:
            stored = day_rows(client, venue, day)
            bad = verify_day(client, result)
        failed |= bool(bad)
        verdict = "ok" if not bad else f"mismatch: {_hhmm([m.minute for m in bad])}"
        quality = "-"
        if stored:

            try:
                check_partition(settings, day, venue, docs=False)
                quality = "ok"
            except PartitionCheckFailed as exc:
                failed, quality = True, f"failed: {exc}"
        table.add_row(day.isoformat(), str(len(result.files)), str(result.total("read")),
                      str(result.total("inserted")), str(result.total("existing")),
                      str(result.total("repeated")), str(result.total("invalid")), str(stored),
                      verdict, quality, style="red" if failed else None)
        err_console.print(f"[dim]{day}: done in {(datetime.now() - started).total_seconds():.1f}s[/dim]")
        day += timedelta(days=1)
    print_table(table)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
    app.command("reconcile")(reconcile)
    app.command("backfill")(backfill)
