"""Asset keys and owners shared by the asset, check, job and sensor modules (one place, so
the modules that draw the lineage between them need not import each other)."""

from dagster import AssetKey

OWNERS = ["team:data-platform"]

AUDIT_KEY = AssetKey(["ops", "row_count_audit"])
RECON_KEY = AssetKey(["ops", "reconciliation"])
BACKFILL_KEY = AssetKey(["market", "trades_backfill"])
BOOKS_BACKFILL_KEY = AssetKey(["market", "book_updates_backfill"])
REPORT_KEY = AssetKey(["reports", "audit_report"])
