"""Book backfills: Tardis.dev incremental_book_L2 files of a day x venue partition loaded into
market.book_updates (feedhouse.verify.backfill_books does the work, the same code as
`feedhouse backfill --books`). Same partitions, archive folder (settings.archive_dir) and
job (`backfill_archives`) as the trade backfill; in the launchpad the asset selection picks
trades, books or both."""

from dagster import MetadataValue

from feedhouse.verify.backfill_books import BookBackfill, backfill_books_day, day_book_rows
from orchestration.assets.backfill_partition import BackfillKind, backfill_asset, totals
from orchestration.keys import BOOKS_BACKFILL_KEY


def book_files_markdown(result: BookBackfill) -> str:
    lines = ["| file | read | inserted | already stored | repeated |", "|---|---|---|---|---|"]
    lines += [f"| {f.path.rsplit('/', 1)[-1]} | {f.read} | {f.inserted} | {f.existing} | "
              f"{f.repeated} |" for f in result.files]
    return "\n".join(lines)


def _report(result: BookBackfill) -> dict:
    return {
        **totals(result),
        "per_file": MetadataValue.md(book_files_markdown(result)),
    }


def _unstored(result: BookBackfill, new_rows: int) -> int:
    """Rows read = rows stored: each distinct level update read was stored before the run
    (already stored) or is one of the day's new rows; the difference is what went missing."""
    return result.total("read") - result.total("repeated") - result.total("existing") - new_rows


def _load(connect, venue, day, archive, log) -> BookBackfill:
    result = backfill_books_day(connect, venue, day, archive)
    log(f"{venue} {day}: {result.total('read')} level updates read, {result.total('inserted')} "
        f"inserted, {result.total('existing')} already stored, {result.total('repeated')} "
        "repeated in the files")
    return result


BOOKS = BackfillKind(kind="books", what="book level update", day_rows=day_book_rows,
                     load=_load, report=_report, unstored=_unstored)


book_updates_backfill = backfill_asset(
    BOOKS_BACKFILL_KEY, BOOKS,
    "Tardis.dev incremental_book_L2 files (<exchange>_incremental_book_L2_<day>_<SYMBOL>"
    ".csv[.gz] under settings.archive_dir) loaded into market.book_updates under feed "
    "backfill:<venue>; every level update read is stored once: a second run, or a day the "
    "live feed stored, adds nothing.",
)

ASSETS = [book_updates_backfill]
