-- Row-count audit: say exactly what ledger_count is (`inserted` already includes replayed
-- rows, see 005) and how table_name reads when a feed writes several tables.
ALTER TABLE ops.row_count_audit COMMENT COLUMN ledger_count 'rows the ledger says reached ClickHouse: sum(inserted), buffer replays included';
ALTER TABLE ops.row_count_audit COMMENT COLUMN table_name 'table(s) the feed writes, joined with + (e.g. market.trades+market.quotes)';
