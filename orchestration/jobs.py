"""Jobs: each selects the assets/checks it runs (the executor is chosen per environment in
orchestration.resources and set once on the Definitions)."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from orchestration.assets.audit import row_counts_match_ledger
from orchestration.assets.tables import TABLES
from orchestration.freshness import freshness_checks
from orchestration.keys import AUDIT_KEY, BACKFILL_KEY, BOOKS_BACKFILL_KEY, RECON_KEY

observe_tables_job = define_asset_job(
    "observe_tables",
    selection=AssetSelection.assets(*(t.key for t in TABLES)).without_checks()
    | AssetSelection.checks(freshness_checks),
    description="Observe every ClickHouse table (row counts, last event time, rows per "
    "venue/feed, lag) and check that trades, quotes and readings are fresh.",
)
row_count_audit_job = define_asset_job(
    "row_count_audit",
    selection=AssetSelection.assets(AUDIT_KEY) | AssetSelection.checks(row_counts_match_ledger),
    description="Audit closed minutes (ledger vs table) and check every data table.",
)
reconcile_job = define_asset_job(
    "reconcile_replays",
    selection=AssetSelection.assets(RECON_KEY),
    description="Reconcile finished buffer replays (launched per replay by replay_log_sensor).",
)
backfill_job = define_asset_job(
    "backfill_archives",
    selection=AssetSelection.assets(BACKFILL_KEY, BOOKS_BACKFILL_KEY),
    description="Load archive files for day x venue partitions: trades (Binance dumps, Tardis "
    "trades, captures) into market.trades, Tardis incremental_book_L2 files into "
    "market.book_updates. A kind the day has no file of is skipped; pick trades or books "
    "alone with the launchpad's asset selection.",
)

JOBS = [observe_tables_job, row_count_audit_job, reconcile_job, backfill_job]
