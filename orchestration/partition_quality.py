"""The quality check of one backfill partition (day x venue), shared by the backfill asset
and the data-quality module (kept apart so neither imports the other)."""

from datetime import date

from dagster import Failure, MetadataValue

from feedhouse.core.settings import Settings
from quality.runner import run_quality
from quality.window import Window


def partition_quality(settings: Settings, day: date | str, venue: str) -> dict[str, object]:
    """For the backfill: check one day x venue partition before it is reported done.

    Returns metadata to attach to the partition's materialization; raises dagster.Failure
    (with the failed expectations) when an ERROR expectation failed. Call it outside any
    open warehouse block (it opens the warehouse itself).
    """
    run = run_quality(settings, Window.partition(day, venue), venue_only=True)
    metadata: dict[str, object] = {
        "quality": MetadataValue.md("\n".join(["```", run.summary(), "```"])),
        "quality_run_id": run.run_id,
    }
    if run.docs_index is not None:
        metadata["data_docs"] = MetadataValue.path(str(run.docs_index))
    if not run.ok:
        first = run.summary().splitlines()
        raise Failure(f"quality of partition {day}|{venue}: {'; '.join(first)}", metadata=metadata)
    return metadata
