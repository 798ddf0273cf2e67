"""`feedhouse run`: run the configured feeds until stopped (SIGINT/SIGTERM or --seconds)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import orjson
import typer
from rich.live import Live
from rich.table import Table

from dataflows.runner import run as run_flow
from dataflows.sink.stats import STATS
from feedhouse.app.cli.context import err_console, settings_from
from feedhouse.core.config import load_settings
from feedhouse.core.errors import SettingsError

PLAIN_EVERY_S = 5.0


class StatusView:
    """Rows/s per feed, duplicates, dead letters, buffered rows: a live table on a TTY,
    a log line every few seconds otherwise."""

    def __init__(self, live: Live | None) -> None:
        self.live = live
        self.last: dict[str, int] = {}
        self.last_t = time.monotonic()
        self.last_plain = 0.0

    def __call__(self) -> None:

        now = time.monotonic()
        plain_due = self.live is None and now - self.last_plain >= PLAIN_EVERY_S
        if self.live is None and not plain_due:
            return
        dt = max(now - self.last_t, 1e-6)
        rows = []
        for feed, t in sorted(STATS.totals.items()):
            stored = t["inserted"] + t["buffered"] - t["replayed"]
            rows.append((feed, (stored - self.last.get(feed, 0)) / dt, t))
            self.last[feed] = stored
        self.last_t = now
        if self.live is not None:
            self.live.update(self._table(rows))
            return
        self.last_plain = now
        parts = [
            f"{feed}: {rate:.0f} rows/s inserted={t['inserted']} dup={t['duplicates']} "
            f"invalid={t['invalid']}"
            for feed, rate, t in rows
        ]
        logging.getLogger("feedhouse.run").info(
            "%s | buffered=%d", "; ".join(parts) or "waiting for data", STATS.buffered_rows
        )

    @staticmethod
    def _table(rows) -> Table:

        table = Table(title=f"feedhouse run — buffered rows: {STATS.buffered_rows}")
        for col in ("feed", "rows/s", "messages", "inserted", "duplicates", "invalid", "buffered",
                    "replayed"):
            table.add_column(col, justify="left" if col == "feed" else "right")
        for feed, rate, t in rows:
            table.add_row(feed, f"{rate:,.0f}", f"{t['received']:,}", f"{t['inserted']:,}",
                          f"{t['duplicates']:,}", f"{t['invalid']:,}", f"{t['buffered']:,}",
                          f"{t['replayed']:,}")
        return table


def run(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", help="settings file"),
    seconds: float | None = typer.Option(None, "--seconds", min=0.1, help="stop after this long"),
    feed: list[str] = typer.Option([], "--feed", help="run only these feeds (repeatable)"),
) -> None:
    """Run the configured dataflows until stopped (SIGINT/SIGTERM), flushing what they hold."""

    settings = load_settings(config) if config is not None else settings_from(ctx)
    feeds = [settings.feed(name) for name in feed] if feed else None
    if not (feeds or settings.feeds):
        raise SettingsError("setting 'feeds': no feed configured, nothing to run")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if err_console.is_terminal:
        with Live(console=err_console, refresh_per_second=2, transient=False) as live:
            run_flow(settings, feeds, seconds=seconds, on_status=StatusView(live))
    else:
        run_flow(settings, feeds, seconds=seconds, on_status=StatusView(None))
    summary = {"run": "stopped", "buffered_rows": STATS.buffered_rows,
               "feeds": {k: dict(v) for k, v in sorted(STATS.totals.items())}}
    sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command()(run)
