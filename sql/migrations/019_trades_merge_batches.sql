-- Merge market.trades' parts in larger batches, as 017/018 do for iot.readings (issue 16).
-- At paced rates the committer inserts back to back (~100 small parts/s at 2k trades/s)
-- and with the default selector chDB merged every few new parts into a bigger one again.
ALTER TABLE market.trades MODIFY SETTING min_parts_to_merge_at_once = 20;
ALTER TABLE market.trades MODIFY SETTING merge_selector_base = 20;
