"""What `feedhouse demo` shows: the live ingest table while it runs, the final table after.

On a terminal the live table (records/s, received, duplicates, invalid, inserted,
buffered and replayed rows per feed, and the phase) refreshes twice a second; in a log a
plain line every five seconds says the same in short.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from feedhouse.app.demo.verification import DemoOutcome
from feedhouse.app.drills.process import RunProcess, received_total


class LiveView:
    """The live table of one demo run; `phase` is the line under it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.phase = "starting"
        self.rates: dict[str, float] = {}
        self._last: tuple[float, dict[str, int]] | None = None

    @property
    def tty(self) -> bool:
        return self.console.is_terminal

    def live(self, ingest: RunProcess) -> AbstractContextManager:
        """A rich Live on a terminal; elsewhere nothing (plain lines instead)."""
        if self.tty:
            return Live(self.render(ingest), console=self.console, refresh_per_second=2,
                        transient=False)
        return nullcontext()

    def status(self, ingest: RunProcess) -> dict:
        return ingest.status(timeout_s=1) or {}

    def render(self, ingest: RunProcess) -> Group:
        status = self.status(ingest)
        feeds = status.get("feeds", {})
        now = time.monotonic()
        totals = {name: f.get("parsed", 0) for name, f in feeds.items()}
        if self._last is not None and now > self._last[0]:
            dt = now - self._last[0]
            self.rates = {k: (v - self._last[1].get(k, 0)) / dt for k, v in totals.items()}
        self._last = (now, totals)
        table = Table(title="feedhouse demo: live ingest", expand=False)
        for column in ("feed", "records/s", "received", "records", "duplicates", "invalid",
                       "inserted", "buffered", "replayed"):
            table.add_column(column, justify="left" if column == "feed" else "right")
        for name in sorted(feeds):
            f = feeds[name]
            table.add_row(name, f"{self.rates.get(name, 0):,.0f}", f"{f['received']:,}",
                          f"{f['parsed']:,}", f"{f['duplicates']:,}", f"{f['invalid']:,}",
                          f"{f['inserted']:,}", f"{f['buffered']:,}", f"{f['replayed']:,}")
        buffered = status.get("buffered_rows", 0)
        style = "bold red" if "UNREACHABLE" in self.phase else "bold green"
        line = Text(f"{self.phase} | rows waiting in the DuckDB buffer: {buffered:,}", style=style)
        return Group(table, line)

    def plain_line(self, ingest: RunProcess) -> None:
        status = self.status(ingest)
        self.console.print(
            f"[demo] {self.phase}: received {received_total(status):,} messages, "
            f"buffer {status.get('buffered_rows', 0):,} rows", highlight=False
        )


def final_table(outcome: DemoOutcome) -> Table:
    table = Table(title="feedhouse demo: what was proven")
    columns = ("feed", "received", "stored", "duplicates", "invalid", "buffered", "replayed",
               "audit", "reconciliation", "quality")
    for column in columns:
        table.add_column(column, justify="left" if column == "feed" else "right")
    for row in outcome.rows:
        table.add_row(*(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c])
                        for c in columns))
    return table


def print_next_steps(console: Console, outcome: DemoOutcome) -> None:
    if outcome.report is not None:
        console.print(f"audit report: {outcome.report}")
    if outcome.data_docs is not None:
        console.print(f"Great Expectations Data Docs: {outcome.data_docs}")
    console.print("next:\n"
                  "  make ui                          # Dagster UI on http://127.0.0.1:3000\n"
                  "  feedhouse analytics vwap         # VWAP per venue and symbol\n"
                  "  feedhouse analytics spread_stats # best bid/ask spreads\n"
                  "  feedhouse analytics device_health\n"
                  "  feedhouse sql \"SELECT venue, count() FROM market.trades GROUP BY venue\"")
