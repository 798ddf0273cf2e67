"""Backfills: archive files (Binance daily dumps, Tardis.dev trades, captures) loaded into
market.trades, one partition per day x venue (feedhouse.verify.backfill does the work, the same
code as `feedhouse backfill`)."""


import warnings
from datetime import date

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from feedhouse.core.errors import FeedhouseError
from feedhouse.verify.backfill import (
    BackfillResult,
    backfill_day,
    day_rows,
    ensure_schema,
    verify_day,
)
from orchestration.keys import BACKFILL_KEY, OWNERS
from orchestration.partition_quality import partition_quality
from orchestration.partitions import BACKFILL_PARTITIONS, DATE, VENUE
from orchestration.resources.settings import SettingsResource
from orchestration.resources.warehouse import WarehouseResource

ARCHIVE_UNSET = ("setting 'archive_dir' is not set: point it at a folder of archive files "
                 "(archive_dir in feedhouse.yaml or FEEDHOUSE_ARCHIVE_DIR)")


def files_markdown(result: BackfillResult) -> str:
    lines = ["| file | kind | read | inserted | already stored | repeated | invalid | rows/s |",
             "|---|---|---|---|---|---|---|---|"]
    for f in result.files:
        rate = f.read / f.seconds if f.seconds > 0 else 0.0
        lines.append(f"| {f.path.rsplit('/', 1)[-1]} | {f.kind} | {f.read} | {f.inserted} | "
                     f"{f.existing} | {f.repeated} | {f.invalid} | {rate:,.0f} |")
    return "\n".join(lines)


# BackfillPolicy and @asset's backfill_policy are marked beta in 1.13: chosen on purpose.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=BetaWarning)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    # One run per day x venue: each partition is an independent, idempotent unit, so a bad
    # archive file fails and retries only its own day, and each partition's row counts show
    # up on its own materialization. Batching (multi_run(n) / single_run) would not save much
    # (a run is cheap next to reading a day of trades) and a multi-dimensional key range is
    # not a rectangle, so batches would mix days and venues arbitrarily.
    BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=1)


@asset(
    key=BACKFILL_KEY,
    group_name="backfill",
    owners=OWNERS,
    kinds={"clickhouse"},
    partitions_def=BACKFILL_PARTITIONS,
    backfill_policy=BACKFILL_POLICY,
    description="Archive files (Binance daily trade dumps, Tardis.dev trade files and recorded captures under "
    "settings.archive_dir) loaded into market.trades under feed backfill:<venue>; running a "
    "partition twice, or over a day the live feed stored, adds no duplicate.",
)
def trades_backfill(
    context: AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
) -> MaterializeResult:
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    day, venue = date.fromisoformat(keys[DATE]), keys[VENUE]
    archive = settings.load().archive_dir
    if archive is None:
        raise Failure(ARCHIVE_UNSET, allow_retries=False)
    ensure_schema(warehouse.open_for_backfill)  # as `feedhouse run` does: no `init` needed
    with warehouse.open_for_backfill() as client:
        before = day_rows(client, venue, day)
    try:
        result = backfill_day(warehouse.open_for_backfill, venue, day, archive,
                              progress=context.log.info, migrate=False)
    except FeedhouseError as exc:  # no archive file, an unreadable one: one line, no trace
        raise Failure(f"backfill {venue} {day}: {exc}", allow_retries=False) from None
    with warehouse.open_for_backfill() as client:
        after = day_rows(client, venue, day)
        bad = verify_day(client, result)
    metadata = {
        "files": len(result.files),
        "rows_read": result.total("read"),
        "rows_inserted": result.total("inserted"),
        "already_stored": result.total("existing"),
        "repeated_in_archive": result.total("repeated"),
        "invalid": result.total("invalid"),
        "rows_per_s": MetadataValue.float(round(result.rows_per_s, 1)),
        "seconds": MetadataValue.float(round(result.seconds, 3)),
        "empty_files": [f.path.rsplit("/", 1)[-1] for f in result.empty_files],
        "day_rows_before": before,
        "day_rows_after": after,
        "per_file": MetadataValue.md(files_markdown(result)),
    }
    if not result.total("read"):
        raise Failure(
            f"backfill {venue} {day}: the archive files matched ({len(result.files)}) hold no "
            f"trade of the day", metadata=metadata,
        )
    if bad:
        raise Failure(
            f"backfill {venue} {day}: {len(bad)} minute(s) disagree with the ledger, first "
            f"{bad[0].minute:%H:%M} (ledger {bad[0].ledger_count}, table {bad[0].table_count})",
            metadata=metadata,
        )
    if after:
        # the same suites as the live data: a failing ERROR expectation fails the partition
        metadata.update(partition_quality(settings.load(), day, venue))
    return MaterializeResult(metadata=metadata)


ASSETS = [trades_backfill]
