"""Backfill partitions: one per UTC day x venue (the unit of archive files and of idempotence)."""

from __future__ import annotations

from dagster import (
    DailyPartitionsDefinition,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from dataflows.venues import VENUES

# First day offered in the UI. Binance's public dumps go back to 2017; keeping the grid to
# recent history keeps the partition count (days x venues) small enough for the UI.
BACKFILL_START = "2024-01-01"
DATE, VENUE = "date", "venue"

BACKFILL_PARTITIONS = MultiPartitionsDefinition(
    {
        DATE: DailyPartitionsDefinition(start_date=BACKFILL_START, timezone="UTC"),
        VENUE: StaticPartitionsDefinition(sorted(VENUES)),
    }
)
