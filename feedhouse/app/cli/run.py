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

from dataflows.cluster import Cluster, free_addresses
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
    processes: int = typer.Option(
        1, "--processes", min=1, max=16,
        help="ingest processes (one Bytewax cluster on loopback): MQTT subscriber partitions "
        "spread over them, the store is written by this one alone (docs/mqtt-performance.md)"),
    cluster_index: int = typer.Option(0, "--cluster-index", hidden=True),
    cluster_addresses: str = typer.Option("", "--cluster-addresses", hidden=True),
) -> None:
    """Run the configured dataflows until stopped (SIGINT/SIGTERM), flushing what they hold."""

    settings = load_settings(config) if config is not None else settings_from(ctx)
    config = config or (ctx.find_root().obj or {}).get("config")
    feeds = [settings.feed(name) for name in feed] if feed else None
    if not (feeds or settings.feeds):
        raise SettingsError("setting 'feeds': no feed configured, nothing to run")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cluster, command = None, None
    if cluster_addresses:  # a worker process started by process 0
        cluster = Cluster(cluster_index, tuple(cluster_addresses.split(",")))
    elif processes > 1:
        cluster = Cluster(0, free_addresses(processes))
        command = [sys.executable, "-m", "feedhouse.app.cli.main", "run"]
        command += ["--config", str(config)] if config else []
        command += [a for name in feed for a in ("--feed", name)]
    if cluster is not None and cluster.index > 0:
        run_flow(settings, feeds, seconds=seconds, cluster=cluster)
        return  # no summary: the counts are process 0's (it holds the sink)
    if err_console.is_terminal:
        with Live(console=err_console, refresh_per_second=2, transient=False) as live:
            run_flow(settings, feeds, seconds=seconds, on_status=StatusView(live),
                     cluster=cluster, worker_command=command)
    else:
        run_flow(settings, feeds, seconds=seconds, on_status=StatusView(None),
                 cluster=cluster, worker_command=command)
    summary = {"run": "stopped", "buffered_rows": STATS.buffered_rows,
               "feeds": {k: dict(v) for k, v in sorted(STATS.totals.items())}}
    sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command()(run)
