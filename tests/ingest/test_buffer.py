"""LocalBuffer (DuckDB): put/pending/load/delete, order, and surviving a killed process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from dataflows.sink.batches import TRADES, make_batch, rows_table
from dataflows.sink.buffer import LocalBuffer
from feedhouse.core.errors import FeedhouseError
from feedhouse.core.records import Trade

T0 = 1_700_000_000_000_000


def trades_batch(token: str, n: int, start: int = 0):
    rows = [
        Trade(
            "binance",
            "BTC-USDT",
            "BTCUSDT",
            str(start + i),
            1.5,
            2.0,
            "buy",
            T0 + i * 60_000_000,
            T0,
        )
        for i in range(n)
    ]
    return make_batch(TRADES, "bn", token, rows_table(TRADES, rows, {"feed": "bn"}))


def test_put_pending_load_delete_in_order(tmp_path):
    with LocalBuffer(tmp_path / "b.duckdb") as buf:
        ids = [buf.put(trades_batch(f"t{i}", 3, i * 3)) for i in range(3)]
        assert buf.pending_rows == 9 and buf.pending_batches == 3
        pending = buf.pending()
        assert [p.id for p in pending] == ids
        assert [p.token for p in pending] == ["t0", "t1", "t2"]
        first = buf.load(pending[0])
        assert first.data.column("trade_id").to_pylist() == ["0", "1", "2"]
        assert first.minutes == {T0 // 1_000_000 // 60 * 60 + 60 * i: 1 for i in range(3)}
        assert first.first_event_us == T0 and first.last_event_us == T0 + 120_000_000
        buf.delete(ids[1])
        assert [p.token for p in buf.pending()] == ["t0", "t2"]
        assert buf.pending_rows == 6


@pytest.mark.integration
def test_stored_batches_survive_a_killed_process(tmp_path):
    path = tmp_path / "b.duckdb"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        from tests.ingest.test_buffer import trades_batch
        from dataflows.sink.buffer import LocalBuffer
        buf = LocalBuffer({str(path)!r})
        for i in range(5):
            buf.put(trades_batch(f"k{{i}}", 100, i * 100))
        print("stored", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and "stored" in proc.stdout
    with LocalBuffer(path) as buf:
        assert buf.pending_rows == 500
        assert [p.token for p in buf.pending()] == [f"k{i}" for i in range(5)]
        assert buf.load(buf.pending()[4]).data.num_rows == 100


@pytest.mark.integration
def test_second_opener_gets_a_clear_error(tmp_path):
    path = tmp_path / "b.duckdb"
    with LocalBuffer(path):
        code = f"from dataflows.sink.buffer import LocalBuffer; LocalBuffer({str(path)!r})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode != 0 and "in use by another process" in proc.stderr


def test_delete_many_keeps_the_counts_and_a_drain_gets_room_for_large_reads(tmp_path):
    with LocalBuffer(tmp_path / "b.duckdb", memory_limit="64MB") as buf:
        ids = [buf.put(trades_batch(f"t{i}", 4, i * 4)) for i in range(5)]
        buf.delete_many([ids[0], ids[3], 10_000])  # an id no longer there changes nothing
        assert (buf.pending_rows, buf.pending_batches) == (12, 3)
        assert [p.token for p in buf.pending()] == ["t1", "t2", "t4"]

        def limit() -> str:
            return buf._con.execute("SELECT current_setting('memory_limit')").fetchone()[0]

        small = limit()
        with buf.roomy("1GB"):
            assert (small, limit()) == ("61.0 MiB", "953.6 MiB")  # 64 MB, 1 GB
            loaded = buf.load_many(buf.pending())
        assert limit() == small  # back to the ingest-time limit after the drain
        assert [b.data.column("trade_id").to_pylist()[0] for b in loaded] == ["4", "8", "16"]
        with pytest.raises(FeedhouseError, match="'1GB; DROP' is not a size"):
            with buf.roomy("1GB; DROP"):
                pass
        assert limit() == small


def test_emptied_buffer_gives_duckdbs_cached_blocks_back(tmp_path):
    """A replayed outage must not leave its batches' blocks in DuckDB's memory: they used to
    add 2-4 MB per outage (the soak drill), up to the buffer's memory limit."""
    with LocalBuffer(tmp_path / "b.duckdb") as buf:
        ids = [buf.put(trades_batch(f"t{i}", 5000, start=i * 5000)) for i in range(20)]
        buf.load_many(buf.pending())
        held = sum(buf.memory_bytes().values())
        assert held > 2 * 2**20  # the batches' blocks are cached while pending
        buf.delete_many(ids[:10])
        assert buf.pending_batches == 10  # not empty: nothing forced
        buf.delete_many(ids[10:])
        assert buf.pending_batches == 0
        assert sum(buf.memory_bytes().values()) < held / 4
