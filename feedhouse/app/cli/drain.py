"""`feedhouse drain`: drain the local buffer into ClickHouse now.

(`replay` is its old name, kept as a hidden alias for scripts; each drain is still one
row of `ops.replay_log`.)
"""

from __future__ import annotations

import typer

from dataflows.sink.writer import drain_buffer
from feedhouse.app.cli.context import console, settings_from
from feedhouse.core.errors import FeedhouseError
from feedhouse.core.records import iso_from_us


def drain(ctx: typer.Context) -> None:
    """Drain the local buffer into ClickHouse now (same tokens: nothing is stored twice)."""

    settings = settings_from(ctx)
    reports = drain_buffer(settings)
    if not reports:
        console.print(f"local buffer {settings.buffer_path} is empty: nothing to drain")
        return
    for r in reports:
        span = (f" events {iso_from_us(r.first_event_us)} .. {iso_from_us(r.last_event_us)}"
                if r.first_event_us else "")
        console.print(f"{r.feed or '-'} {r.table}: {r.rows}/{r.buffered_rows} rows in "
                      f"{r.batches} batch(es){span}: {r.status}", markup=False, soft_wrap=True)
    failed = [r for r in reports if r.status != "finished"]
    if failed:
        raise FeedhouseError(f"drain {reports[0].replay_id} stopped: {failed[0].error}")


def register(app: typer.Typer) -> None:
    app.command("drain")(drain)
    app.command("replay", hidden=True)(drain)
