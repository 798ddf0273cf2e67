-- Replay-log and gap rows can reach ClickHouse twice: written through the local buffer
-- when ClickHouse was down, then replayed. They carry insert_deduplication_tokens like
-- every batch, but a non-replicated MergeTree only honours tokens within this window
-- (0 = off by default), so a replayed replay-log row would inflate reconciliation.
ALTER TABLE ops.replay_log MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE ops.feed_gaps MODIFY SETTING non_replicated_deduplication_window = 10000;
