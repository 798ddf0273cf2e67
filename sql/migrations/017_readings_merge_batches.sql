-- Merge iot.readings' parts in larger batches (issue 17). An MQTT feed inserts every
-- mqtt.flush_ms (~16-20 small parts/s at 10k readings/s), and with the default selector
-- chDB merged each few new parts into the big one again: that rewrite cost as much CPU
-- as the inserts (MergeMutate 20 us of 63 us per message at 10k/s, docs/mqtt-performance.md).
-- Waiting for 20 parts per merge cut MergeMutate CPU per insert 2.7-3x (5.0-6.0 -> 1.9 ms,
-- 600-row inserts at 16/s); reads see at most ~20 more small parts.
ALTER TABLE iot.readings MODIFY SETTING min_parts_to_merge_at_once = 20;
