-- Dagster runs that failed, written by the `failed_runs_to_clickhouse` run-failure sensor
-- (and by `feedhouse demo` for its own verification runs), so an alert is also SQL.
-- One row per run: a sensor tick retried after a warehouse hiccup writes the same run
-- again, and ReplacingMergeTree keeps the latest row.
CREATE TABLE IF NOT EXISTS ops.failed_runs
(
    run_id String COMMENT 'Dagster run id',
    job_name LowCardinality(String) COMMENT 'Dagster job',
    partition String COMMENT 'partition key of the run, empty when none',
    failed_ts DateTime64(6, 'UTC') COMMENT 'when the run failed',
    failed_steps Array(String) COMMENT 'steps that failed',
    error String COMMENT 'first line of the first failure',
    tags String COMMENT 'run tags as JSON',
    logged_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when this row was written'
)
ENGINE = ReplacingMergeTree(logged_ts)
PARTITION BY toYYYYMM(failed_ts)
ORDER BY run_id
COMMENT 'failed Dagster runs (run-failure sensor)';
