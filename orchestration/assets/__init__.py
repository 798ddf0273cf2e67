"""Assets: the tables (observed), the audit, the reconciliation and the backfill."""
