-- Merge iot.readings with less write amplification (issue 17). With 017's batches of 20
-- parts, the Simple selector's default base (5) still merged each few fresh merges into
-- the big part again: at 30k readings/s held 40 s, MergeMutate took 7.5 us of 21.8 us of
-- ingest CPU per message. Base 20 makes a merge wait for parts of a similar size, so a
-- row is rewritten fewer times: MergeMutate 1.9 us, ingest 12.7 us per message in the
-- same run (docs/mqtt-performance.md). Reads see a few more parts between merges.
ALTER TABLE iot.readings MODIFY SETTING merge_selector_base = 20;
