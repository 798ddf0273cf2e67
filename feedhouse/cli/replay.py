"""`feedhouse replay`: drain the local buffer into ClickHouse now."""

from __future__ import annotations

import typer

from feedhouse.cli.context import console, settings_from
from feedhouse.errors import FeedhouseError
from feedhouse.records import iso_from_us


def replay(ctx: typer.Context) -> None:
    """Drain the local buffer into ClickHouse now (same tokens: nothing is stored twice)."""
    from feedhouse.replay import replay_buffer

    settings = settings_from(ctx)
    reports = replay_buffer(settings)
    if not reports:
        console.print(f"local buffer {settings.buffer_path} is empty: nothing to replay")
        return
    for r in reports:
        span = (f" events {iso_from_us(r.first_event_us)} .. {iso_from_us(r.last_event_us)}"
                if r.first_event_us else "")
        console.print(f"{r.feed or '-'} {r.table}: {r.rows}/{r.buffered_rows} rows in "
                      f"{r.batches} batch(es){span}: {r.status}", markup=False, soft_wrap=True)
    failed = [r for r in reports if r.status != "finished"]
    if failed:
        raise FeedhouseError(f"replay {reports[0].replay_id} stopped: {failed[0].error}")


def register(app: typer.Typer) -> None:
    app.command()(replay)
