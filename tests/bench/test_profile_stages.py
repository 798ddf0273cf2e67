"""bench.profile's stage table: py-spy's collapsed stacks sorted into the path's stages."""

from __future__ import annotations

from bench.profile import stages


def test_samples_go_to_their_stage_and_waiting_threads_are_left_out(tmp_path):
    raw = tmp_path / "ingest.txt"
    main = "thread (1): MainThread;run (dataflows/runner.py:170)"
    raw.write_text("\n".join([
        f"{main};parse_batch (dataflows/parse/stage.py:92);_fast (dataflows/venues/okx.py:128) 6",
        f"{main};FeedSinkPartition.write_batch (dataflows/sink/stage.py:200);"
        "rows_table (dataflows/sink/batches.py:130) 2",
        f"{main};DedupLogic.on_batch (dataflows/dedup/stage.py:120) 1",
        f"{main} 1",  # Bytewax's own frames only
        "thread (2): feed-okx;Runner.run (asyncio/runners.py:118) 3",
        "thread (3): feedhouse-committer;Committer._loop (dataflows/sink/committer.py:204);"
        "Connection.query (chdb/state/sqlitelike.py:756) 2",
        "thread (3): feedhouse-committer;Committer._loop (x.py:1);Condition.wait (threading.py:1) 50",
    ]) + "\n")
    shares = stages(raw)
    assert {k: round(v * 15) for k, v in shares.items()} == {
        "parse (venues)": 6, "source: WebSocket client": 3, "sink: Arrow + tokens": 2,
        "insert (committer)": 2, "dedup": 1, "bytewax (per item, epochs, recovery writes)": 1,
    }
