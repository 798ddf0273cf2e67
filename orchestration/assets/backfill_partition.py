"""What the two backfill assets (trades, books) share: the asset's shape (day x venue
partitions, one run each), one partition of settings.archive_dir, the choice to skip a kind
the day has no file of, the load with its one-line failure, and the verdict before a
partition is reported done (something read, every minute agrees with the ledger, the rows
read are the rows stored, the quality suites pass). A kind is a `BackfillKind`."""

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    Failure,
    MaterializeResult,
    asset,
)

from feedhouse.core.errors import FeedhouseError
from feedhouse.core.settings import Settings
from feedhouse.verify.backfill import ensure_schema, verify_day
from feedhouse.verify.backfill_books import archive_kinds
from orchestration.keys import OWNERS
from orchestration.partition_quality import partition_quality
from orchestration.partitions import BACKFILL_PARTITIONS, DATE, VENUE
from orchestration.resources.settings import SettingsResource
from orchestration.resources.warehouse import WarehouseResource

ARCHIVE_UNSET = ("setting 'archive_dir' is not set: point it at a folder of archive files "
                 "(archive_dir in feedhouse.yaml or FEEDHOUSE_ARCHIVE_DIR)")

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


@dataclass(frozen=True)
class BackfillKind:
    kind: str  # "trades" | "books": archive_kinds' name
    what: str  # in messages: "no <what> of the day"
    day_rows: Callable[[Any, str, date], int]  # (client, venue, day) -> distinct rows stored
    load: Callable[..., Any]  # (connect, venue, day, archive, log) -> the backfill's result
    report: Callable[[Any], dict]  # result -> its metadata (rows_read, per file, ...)
    unstored: Callable[[Any, int], int] = lambda result, new_rows: 0  # rows read not stored


def backfill_asset(key: AssetKey, spec: BackfillKind, description: str) -> AssetsDefinition:
    """The asset of one kind of backfill. output_required=False: a day with files of the
    other kind only has nothing to load and is not materialized (the job runs both kinds)."""

    @asset(key=key, group_name="backfill", owners=OWNERS, kinds={"clickhouse"},
           partitions_def=BACKFILL_PARTITIONS, backfill_policy=BACKFILL_POLICY,
           output_required=False, description=description)
    def backfill(context: AssetExecutionContext, warehouse: WarehouseResource,
                 settings: SettingsResource) -> Iterator[MaterializeResult]:
        yield from materialize(context, warehouse, settings, spec)

    return backfill


def totals(result: Any) -> dict[str, int]:
    """The counts both kinds report (a BackfillResult or a BookBackfill)."""
    return {"files": len(result.files), "rows_read": result.total("read"),
            "rows_inserted": result.total("inserted"), "already_stored": result.total("existing"),
            "repeated_in_archive": result.total("repeated")}


def materialize(context: AssetExecutionContext, warehouse: WarehouseResource,
                settings: SettingsResource, spec: BackfillKind) -> Iterator[MaterializeResult]:
    """Load the partition's files of `spec.kind`, then yield its materialization when done."""
    loaded = settings.load()
    day, venue, archive = partition(context, loaded)
    if only_other_kind(context, spec.kind, archive, day, venue):
        return
    ensure_schema(warehouse.open_for_backfill)  # as `feedhouse run` does: no `init` needed
    with warehouse.open_for_backfill() as client:
        before = spec.day_rows(client, venue, day)
    try:
        result = spec.load(warehouse.open_for_backfill, venue, day, archive, context.log.info)
    except FeedhouseError as exc:  # no archive file, an unreadable one: one line, no trace
        raise Failure(f"backfill {venue} {day}: {exc}", allow_retries=False) from None
    with warehouse.open_for_backfill() as client:
        after = spec.day_rows(client, venue, day)
        bad = verify_day(client, result)
    metadata = {**spec.report(result), "day_rows_before": before, "day_rows_after": after}
    yield MaterializeResult(metadata=verdict(loaded, venue, day, spec.what, metadata, files=len(
        result.files), bad=bad, unstored=spec.unstored(result, after - before)))


def partition(context: AssetExecutionContext, settings: Settings) -> tuple[date, str, Path]:
    """(day, venue, archive folder) of the run's partition; fails when archive_dir is unset."""
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    if settings.archive_dir is None:
        raise Failure(ARCHIVE_UNSET, allow_retries=False)
    return date.fromisoformat(keys[DATE]), keys[VENUE], Path(settings.archive_dir)


def only_other_kind(context: AssetExecutionContext, kind: str, archive: Path, day: date,
                    venue: str) -> bool:
    """True when the day has archive files of the other kind only: this asset has nothing to
    load. With no file of either kind the load fails, naming what it looked for."""
    kinds = archive_kinds(archive, day, venue)
    if kind in kinds or not kinds:
        return False
    context.log.info(f"no {kind} archive file of {venue} for {day} under {archive} (only "
                     f"{', '.join(sorted(kinds))}): nothing to load, not materialized")
    return True


def verdict(settings: Settings, venue: str, day: date, what: str, metadata: dict, *,
            files: int, bad: list, unstored: int = 0) -> dict:
    """Raise dagster.Failure (with the metadata) unless the partition is done; returns the
    metadata with the quality suites' outcome."""
    where = f"backfill {venue} {day}"
    if not metadata["rows_read"]:
        raise Failure(f"{where}: the archive files matched ({files}) hold no {what} of the day",
                      metadata=metadata)
    if bad:
        raise Failure(
            f"{where}: {len(bad)} minute(s) disagree with the ledger, first "
            f"{bad[0].minute:%H:%M} (ledger {bad[0].ledger_count}, table {bad[0].table_count})",
            metadata=metadata,
        )
    if unstored:
        raise Failure(f"{where}: {unstored} {what} rows read are not stored", metadata=metadata)
    if metadata["day_rows_after"]:
        # the same suites as the live data: a failing ERROR expectation fails the partition
        metadata.update(partition_quality(settings, day, venue))
    return metadata
