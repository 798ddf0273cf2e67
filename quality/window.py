"""The bounded slice of a table a suite validates, and reading it from ClickHouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from feedhouse.core.errors import FeedhouseError
from feedhouse.store.classify import first_line
from quality.suites import Suite, query_text

if TYPE_CHECKING:
    import pyarrow as pa

    from feedhouse.core.settings import QualitySettings


@dataclass(frozen=True)
class Window:
    """Event time [start, end), optionally one venue (a backfill partition)."""

    start: datetime
    end: datetime
    venue: str = ""

    @classmethod
    def last_minutes(cls, minutes: int, now: datetime | None = None) -> Window:
        end = now or datetime.now(UTC)
        return cls(end - timedelta(minutes=minutes), end)

    @classmethod
    def partition(cls, day: date | str, venue: str = "") -> Window:
        if isinstance(day, str):
            day = date.fromisoformat(day)
        start = datetime.combine(day, time(0), tzinfo=UTC)
        return cls(start, start + timedelta(days=1), venue)

    def label(self) -> str:
        where = f" {self.venue}" if self.venue else ""
        return f"{self.start.isoformat()} .. {self.end.isoformat()}{where}"


def query_parameters(quality: QualitySettings, window: Window, now: datetime) -> dict[str, Any]:
    """Every parameter any window query uses (each query takes the ones it names)."""
    ranges = sorted(quality.sensor_ranges.items())
    silences = sorted(quality.venue_silence_overrides_s.items())
    settle = timedelta(seconds=quality.ledger_settle_s + 60)  # a minute closes at its end
    return {
        "start": window.start,
        "book_since": window.start - timedelta(minutes=quality.book_rebuild_minutes),
        "end": window.end,
        "venue": window.venue,
        "now": now,
        "settled": now - settle,
        "sensors": [name for name, _ in ranges],
        "range_mins": [float(lo) for _, (lo, _hi) in ranges],
        "range_maxs": [float(hi) for _, (_lo, hi) in ranges],
        "silence_venues": [venue for venue, _ in silences],
        "silence_limits": [float(s) for _, s in silences],
        "silence_default": float(quality.venue_silence_s),
    }


def read_window(client, suite: Suite, params: dict[str, Any]) -> pa.Table:
    """The suite's window as Arrow (keeps the schema even when no row matches)."""
    sql = query_text(suite)
    used = {k: v for k, v in params.items() if "{" + k + ":" in sql}
    try:
        return client.query_arrow(sql, parameters=used)
    except FeedhouseError:
        raise
    except Exception as exc:  # ClickHouse said no: one line naming the suite and table
        raise FeedhouseError(
            f"quality suite {suite.name}: cannot read {suite.table}: {first_line(exc)}"
        ) from None
