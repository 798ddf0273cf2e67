"""Backfills: archive files (Binance daily dumps, Tardis.dev trades, captures) loaded into
market.trades, one partition per day x venue (feedhouse.verify.backfill does the work, the same
code as `feedhouse backfill`). Book files: orchestration.assets.backfill_books."""


from dagster import MetadataValue

from feedhouse.verify.backfill import BackfillResult, backfill_day, day_rows
from orchestration.assets.backfill_partition import (
    ARCHIVE_UNSET,
    BackfillKind,
    backfill_asset,
    totals,
)
from orchestration.keys import BACKFILL_KEY

__all__ = ["ARCHIVE_UNSET", "ASSETS", "files_markdown", "trades_backfill"]


def files_markdown(result: BackfillResult) -> str:
    lines = ["| file | kind | read | inserted | already stored | repeated | invalid | rows/s |",
             "|---|---|---|---|---|---|---|---|"]
    for f in result.files:
        rate = f.read / f.seconds if f.seconds > 0 else 0.0
        lines.append(f"| {f.path.rsplit('/', 1)[-1]} | {f.kind} | {f.read} | {f.inserted} | "
                     f"{f.existing} | {f.repeated} | {f.invalid} | {rate:,.0f} |")
    return "\n".join(lines)


def _report(result: BackfillResult) -> dict:
    return {
        **totals(result),
        "invalid": result.total("invalid"),
        "rows_per_s": MetadataValue.float(round(result.rows_per_s, 1)),
        "seconds": MetadataValue.float(round(result.seconds, 3)),
        "empty_files": [f.path.rsplit("/", 1)[-1] for f in result.empty_files],
        "per_file": MetadataValue.md(files_markdown(result)),
    }


TRADES = BackfillKind(
    kind="trades", what="trade", day_rows=day_rows, report=_report,
    load=lambda connect, venue, day, archive, log: backfill_day(
        connect, venue, day, archive, progress=log, migrate=False),
)


trades_backfill = backfill_asset(
    BACKFILL_KEY, TRADES,
    "Archive files (Binance daily trade dumps, Tardis.dev trade files and recorded captures under "
    "settings.archive_dir) loaded into market.trades under feed backfill:<venue>; running a "
    "partition twice, or over a day the live feed stored, adds no duplicate.",
)

ASSETS = [trades_backfill]
