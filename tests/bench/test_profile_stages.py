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


def test_book_samples_are_split_by_book_stage_and_start_up_apart(tmp_path):
    raw = tmp_path / "books.txt"
    parse = ("thread (1): MainThread;run (dataflows/runner.py:191);"
             "parse_batch (dataflows/parse/stage.py:109);BookFeed.apply (dataflows/books/live.py:78)")
    raw.write_text("\n".join([
        f"{parse};parse (dataflows/books/parsers.py:211) 5",
        f"{parse};BookColumns.of (dataflows/books/columns.py:104);"
        "_levels (dataflows/books/columns.py:54) 3",
        f"{parse};BookState.apply (dataflows/books/state.py:86);okx (dataflows/books/checksum.py:30) 2",
        f"{parse} 1",
        "thread (1): MainThread;run (dataflows/runner.py:191);DedupLogic.on_batch (x.py:1);"
        "frame_keys (dataflows/books/live.py:140) 1",
        "thread (1): MainThread;<module> (feedhouse/__main__.py:1);"
        "_find_and_load (<frozen importlib._bootstrap>:1) 4",
        "thread (3): feedhouse-committer;Committer._loop (dataflows/sink/committer.py:204);"
        "Connection.query (chdb/state/sqlitelike.py:756) 4",
    ]) + "\n")
    shares = stages(raw, books=True)
    assert {k: round(v * 20) for k, v in shares.items()} == {
        "books: parsers (orjson, BookFrame)": 5, "start-up (imports, schema, buffer)": 4,
        "insert (committer)": 4, "books: BookColumns (levels -> numpy)": 3,
        "books: state + checksum": 2, "books: BookFeed (other)": 1,
        "books: dedup keys, ledger minutes": 1,
    }
    # without books=True the same samples are one parse stage (the trades' table)
    assert stages(raw)["parse (venues)"] == 11 / 20
