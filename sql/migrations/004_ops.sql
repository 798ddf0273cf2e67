-- What the pipeline counted and what Dagster found, queryable as SQL.
CREATE TABLE IF NOT EXISTS ops.ingest_ledger
(
    feed LowCardinality(String) COMMENT 'configured feed',
    minute DateTime('UTC') COMMENT 'message counters: minute received; record counters: minute of the record event time',
    received UInt64 COMMENT 'messages (frames) received',
    with_records UInt64 COMMENT 'messages that carried at least one record',
    invalid UInt64 COMMENT 'messages that failed to parse (sent to the dead letter)',
    ignored UInt64 COMMENT 'messages with nothing to store (heartbeats, acks, book updates)',
    parsed UInt64 COMMENT 'records parsed',
    duplicates UInt64 COMMENT 'records dropped by the dedup window',
    inserted UInt64 COMMENT 'records inserted into ClickHouse directly',
    buffered UInt64 COMMENT 'records written to the local buffer while ClickHouse was unreachable',
    replayed UInt64 COMMENT 'records replayed from the local buffer into ClickHouse'
)
ENGINE = SummingMergeTree
PARTITION BY toDate(minute)
ORDER BY (feed, minute)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'per feed and minute counts of every stage; always read with sum() GROUP BY';

CREATE TABLE IF NOT EXISTS ops.dead_letter
(
    feed LowCardinality(String) COMMENT 'configured feed',
    received_ts DateTime64(6, 'UTC') COMMENT 'when the message was received',
    raw String COMMENT 'the message as received (binary frames base64)',
    error String COMMENT 'why it could not be stored',
    inserted_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when the row reached ClickHouse'
)
ENGINE = MergeTree
PARTITION BY toDate(received_ts)
ORDER BY (feed, received_ts)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'messages that could not be parsed or stored, with the reason';

CREATE TABLE IF NOT EXISTS ops.replay_log
(
    replay_id String COMMENT 'unique id of this replay',
    feed LowCardinality(String) COMMENT 'feed whose buffered batches were replayed',
    table_name LowCardinality(String) COMMENT 'target table, e.g. market.trades',
    batches UInt32 COMMENT 'batches replayed',
    rows UInt64 COMMENT 'rows replayed',
    buffered_rows UInt64 COMMENT 'rows that were in the buffer for these batches',
    first_event_ts DateTime64(6, 'UTC') COMMENT 'earliest event time among the replayed rows',
    last_event_ts DateTime64(6, 'UTC') COMMENT 'latest event time among the replayed rows',
    started_ts DateTime64(6, 'UTC') COMMENT 'replay start',
    finished_ts DateTime64(6, 'UTC') COMMENT 'replay end',
    status LowCardinality(String) COMMENT 'finished or failed',
    error String DEFAULT '' COMMENT 'why a failed replay failed'
)
ENGINE = MergeTree
ORDER BY (started_ts, replay_id)
COMMENT 'one row per buffer replay (per feed and table)';

CREATE TABLE IF NOT EXISTS ops.feed_gaps
(
    feed LowCardinality(String) COMMENT 'configured feed',
    venue LowCardinality(String) COMMENT 'exchange or mqtt',
    gap_start DateTime64(6, 'UTC') COMMENT 'when the gap began',
    gap_end DateTime64(6, 'UTC') COMMENT 'when data flowed again',
    kind LowCardinality(String) COMMENT 'disconnect or sequence',
    reason String COMMENT 'what happened, e.g. connection closed 1006, sequence 100 -> 105',
    missing UInt64 DEFAULT 0 COMMENT 'messages known missing (sequence gaps)'
)
ENGINE = MergeTree
ORDER BY (feed, gap_start)
COMMENT 'disconnects and sequence gaps per feed';

CREATE TABLE IF NOT EXISTS ops.row_count_audit
(
    audited_ts DateTime64(6, 'UTC') COMMENT 'when the audit ran',
    feed LowCardinality(String) COMMENT 'configured feed',
    table_name LowCardinality(String) COMMENT 'audited table',
    minute DateTime('UTC') COMMENT 'event-time minute audited',
    ledger_count Int64 COMMENT 'rows the ledger says were stored (inserted + replayed)',
    table_count Int64 COMMENT 'distinct keys found in the table',
    difference Int64 COMMENT 'table_count - ledger_count',
    status LowCardinality(String) COMMENT 'ok, missing or extra'
)
ENGINE = ReplacingMergeTree(audited_ts)
PARTITION BY toDate(minute)
ORDER BY (feed, table_name, minute)
COMMENT 'row-count audit per feed and minute; the latest audit of a minute wins (use FINAL)';

CREATE TABLE IF NOT EXISTS ops.reconciliation
(
    replay_id String COMMENT 'replay reconciled (ops.replay_log.replay_id)',
    feed LowCardinality(String) COMMENT 'feed replayed',
    checked_ts DateTime64(6, 'UTC') COMMENT 'when the reconciliation ran',
    range_start DateTime64(6, 'UTC') COMMENT 'first event time replayed',
    range_end DateTime64(6, 'UTC') COMMENT 'last event time replayed',
    buffered_rows Int64 COMMENT 'rows the buffer held',
    replayed_rows Int64 COMMENT 'rows the replay inserted',
    table_rows Int64 COMMENT 'rows found in the table for the replayed keys/range',
    status LowCardinality(String) COMMENT 'ok or failed',
    explanation String COMMENT 'what agreed or which minutes disagree',
    bad_minutes Array(DateTime('UTC')) COMMENT 'minutes that disagree'
)
ENGINE = MergeTree
ORDER BY (checked_ts, replay_id)
COMMENT 'reconciliation of each buffer replay';

CREATE TABLE IF NOT EXISTS ops.quality_results
(
    run_id String COMMENT 'quality run id',
    checked_ts DateTime64(6, 'UTC') COMMENT 'when the check ran',
    suite LowCardinality(String) COMMENT 'Great Expectations suite',
    table_name LowCardinality(String) COMMENT 'checked table',
    expectation String COMMENT 'expectation type and column',
    severity LowCardinality(String) COMMENT 'ERROR or WARN',
    window_start DateTime64(6, 'UTC') COMMENT 'window checked: start',
    window_end DateTime64(6, 'UTC') COMMENT 'window checked: end',
    success UInt8 COMMENT '1 when the expectation held',
    observed_value String COMMENT 'observed value as JSON',
    unexpected_count UInt64 COMMENT 'rows that broke the expectation',
    sample String COMMENT 'a sample of offending keys as JSON'
)
ENGINE = MergeTree
ORDER BY (checked_ts, suite, expectation)
COMMENT 'results of the data-quality suites';
