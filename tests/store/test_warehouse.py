"""The warehouse client: per-use chDB with a file lock, nesting detection, error classes."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from feedhouse.core.dsn import normalize_dsn, redact_dsn
from feedhouse.core.errors import WarehouseBusy, WarehouseNested, WarehouseUnavailable
from feedhouse.store.classify import ErrorClass, classify_error
from feedhouse.store.client import HeldWarehouse, connect, warehouse
from feedhouse.store.faults import write_faults


def _worker(dsn: str, worker: int, rounds: int, errors) -> None:
    try:
        for i in range(rounds):
            with connect(dsn, lock_timeout_s=30) as client:
                client.insert("t.events", [[worker, i]], column_names=["worker", "i"])
                seen = client.query(f"SELECT count() FROM t.events WHERE worker = {worker}")
                assert seen.result_rows[0][0] == i + 1
    except Exception as exc:  # reported to the parent
        errors.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.integration
def test_two_processes_share_one_store(settings) -> None:
    with warehouse(settings) as client:
        client.command("CREATE DATABASE t")
        client.command("CREATE TABLE t.events (worker UInt8, i UInt32) ENGINE = MergeTree ORDER BY i")
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(settings.dsn, w, 20, errors)) for w in (1, 2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert [p.exitcode for p in procs] == [0, 0]
    with warehouse(settings) as client:
        rows = client.query("SELECT worker, count(), uniqExact(i) FROM t.events GROUP BY worker ORDER BY worker")
        assert rows.result_rows == [(1, 20, 20), (2, 20, 20)]


def test_nested_open_raises_instead_of_deadlocking(settings) -> None:
    with warehouse(settings), pytest.raises(WarehouseNested, match="already open in this thread"):
        with warehouse(settings):
            pass


def _hold(dsn: str, seconds: float, ready) -> None:
    with connect(dsn):
        ready.set()
        time.sleep(seconds)


@pytest.mark.integration
def test_busy_store_names_the_holder(settings) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(settings.dsn, 5.0, ready))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(WarehouseBusy) as info, warehouse(settings, lock_timeout_s=0.3):
            pass
        message = str(info.value)
        assert f"pid {holder.pid}" in message and ".lock" in message
    finally:
        holder.join(30)


def test_held_warehouse_lets_a_waiter_in(settings) -> None:
    held = HeldWarehouse(settings, max_hold_s=60)
    held.client().query("SELECT 1")
    got_it = threading.Event()

    def waiter() -> None:
        # a different process would do this; a thread exercises the same want-file path
        with connect(settings.dsn, lock_timeout_s=5):
            got_it.set()

    # the in-process lock orders threads, so release from here once the waiter signals
    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 5
    while not got_it.is_set() and time.monotonic() < deadline:
        held.release_if_wanted()
        time.sleep(0.01)
    thread.join(10)
    held.release()
    assert got_it.is_set()


def test_fault_injector_makes_warehouse_unreachable(settings, tmp_path) -> None:
    fault_file = tmp_path / "faults.json"
    faulty = settings.model_copy(update={"fault_file": fault_file})
    write_faults(fault_file, outage=True)
    with pytest.raises(WarehouseUnavailable), warehouse(faulty):
        pass
    write_faults(fault_file, outage=False)
    with warehouse(faulty) as client:
        assert client.query("SELECT 1").result_rows == [(1,)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "exc",
    [
        DatabaseError("Code: 252. DB::Exception: Too many parts (TOO_MANY_PARTS)"),
        DatabaseError("Code: 241. DB::Exception: Memory limit exceeded (MEMORY_LIMIT_EXCEEDED)"),
        DatabaseError("Code: 209. DB::Exception: Timeout (SOCKET_TIMEOUT)"),
        OperationalError("Error HTTPConnectionPool: Connection refused"),
        ConnectionResetError("connection reset by peer"),
        TimeoutError("timed out"),
        WarehouseUnavailable("fault injector"),
        WarehouseBusy("store busy"),
    ],
)
def test_retryable_errors(exc: Exception) -> None:
    assert classify_error(exc) is ErrorClass.RETRYABLE


@pytest.mark.parametrize(
    "exc",
    [
        DatabaseError("Code: 62. DB::Exception: Syntax error (SYNTAX_ERROR)"),
        DatabaseError("Code: 53. DB::Exception: Type mismatch (TYPE_MISMATCH)"),
        DatabaseError("Code: 60. DB::Exception: Unknown table market.nope (UNKNOWN_TABLE)"),
        ValueError("could not convert string to float"),
    ],
)
def test_permanent_errors(exc: Exception) -> None:
    assert classify_error(exc) is ErrorClass.PERMANENT


def test_real_errors_classify(initialized) -> None:
    with warehouse(initialized) as client:
        with pytest.raises(Exception) as syntax:
            client.query("SELEC 1")
        with pytest.raises(Exception) as unknown:
            client.query("SELECT * FROM market.nope")
    assert classify_error(syntax.value) is ErrorClass.PERMANENT
    assert classify_error(unknown.value) is ErrorClass.PERMANENT
    # a server that is not there: connection refused is retryable at run time
    dsn = f"http://default:@127.0.0.1:{_free_port()}/default"
    with pytest.raises(WarehouseUnavailable) as refused, connect(dsn):
        pass
    assert classify_error(refused.value) is ErrorClass.RETRYABLE


def test_dsn_parsing_and_redaction(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_dsn("chdb:///abs/dir") == "chdb:///abs/dir"
    assert normalize_dsn("chdb://rel") == f"chdb://{tmp_path.resolve()}/rel"
    with pytest.raises(ValueError, match="must start with"):
        normalize_dsn("postgres://x")
    with pytest.raises(ValueError, match="invalid port"):
        normalize_dsn("http://host:99999999/db")
    assert redact_dsn("https://u:p@ss@h:8443/db") == "https://u:***@h:8443/db"


@pytest.mark.integration
def test_engine_allocator_options_reach_chdbs_jemalloc(tmp_path) -> None:
    """embedded_store.jemalloc_conf is what the engine's jemalloc runs with (read from
    JE_MALLOC_CONF when chDB loads), and a value in the environment wins."""
    script = (
        "import sys; from feedhouse.core.config import load_settings;"
        "from feedhouse.store.client import warehouse\n"
        "with warehouse(load_settings()) as c:\n"
        "    text = ''.join(r[0] for r in c.query('SELECT stats FROM system.jemalloc_stats')"
        ".result_rows)\n"
        "print([l.strip() for l in text.splitlines() if l.strip().startswith('opt.dirty_decay')])"
    )

    def decay(**env: str) -> str:
        clean = {k: v for k, v in os.environ.items() if k != "JE_MALLOC_CONF"}
        clean.update(FEEDHOUSE_WAREHOUSE_DSN=f"chdb://{tmp_path / 'ch'}",
                     FEEDHOUSE_HOME=str(tmp_path), **env)
        out = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True,
                             text=True, timeout=120, check=True)
        return out.stdout

    assert "opt.dirty_decay_ms: 1000" in decay()  # the default
    assert "opt.dirty_decay_ms: 300" in decay(FEEDHOUSE_EMBEDDED_STORE__JEMALLOC_CONF="dirty_decay_ms:300")
    assert "opt.dirty_decay_ms: 5000" in decay(FEEDHOUSE_EMBEDDED_STORE__JEMALLOC_CONF="")
    assert "opt.dirty_decay_ms: 2000" in decay(JE_MALLOC_CONF="dirty_decay_ms:2000")
