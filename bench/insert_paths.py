"""CPU per insert into an embedded store, by way in: `python -m bench.insert_paths`.

Each way puts the same Arrow tables (as the sink builds them) with an insert token into
one fresh chDB store, ways alternating within every round, for market.trades,
iot.readings and market.book_updates at a few batch sizes:

- client: clickhouse-connect's `insert_arrow` (Arrow file into Python bytes, a temp file,
  `INSERT ... FROM INFILE ... FORMAT Arrow`: the sink's way before this branch);
- bulk: the old `feedhouse.store.bulk` (pyarrow writes the stream to the temp file, the
  INFILE statement through `client.command`);
- infile: the same temp file and statement straight on chDB's connection (no client);
- send_insert: chDB's streaming insert, the Arrow stream as bytes, no file;
- python: `INSERT ... SELECT * FROM Python(tbl)`: chDB reads the Arrow table in memory;
- store: `feedhouse.store.insert.insert_arrow`, what the sink uses now.

Client-side stages alone (no insert): `arrow_file` (clickhouse-connect's Arrow file into
bytes), `arrow_stream` (the stream format into bytes), `tmpfile` (those bytes into a
temp file and unlinked). Figures: CPU ms per insert of the inserting thread
(`thread_ms`: chDB's streaming insert does its work on a thread of its own, so compare
ways by `cpu_ms`) and of the process (`cpu_ms`: chDB's pools included). Merges are
stopped and the table emptied between cells (uncounted): every way makes the same parts,
so their merges would only add noise. With `--gil`, a Python thread spins while the
inserts run: `gil_free` is the share of a core it got (near 1 when the insert holds no
GIL; it also drops under machine load), its CPU taken out of `cpu_ms`. Medians over
rounds; a least-squares line over the sizes gives fixed ms + µs/row per way.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
from clickhouse_connect.driver.query import arrow_buffer

from dataflows.sink.batches import BOOKS, READINGS, TRADES, rows_table
from feedhouse.core.config import load_settings
from feedhouse.core.sqlsafe import identifier
from feedhouse.store.client import warehouse
from feedhouse.store.insert import insert_arrow
from feedhouse.store.migrations import init_schema

T0 = 1_735_689_600_000_000  # 2025-01-01 in µs
WAYS = ("client", "bulk", "infile", "send_insert", "python", "store")
STAGES = ("arrow_file", "arrow_stream", "tmpfile")


def table_rows(table: str, n: int, start: int) -> pa.Table:
    """n distinct rows of `table`, shaped as the sink makes them."""
    if table == TRADES:
        rows = [("binance", "BTC-USDT", "BTCUSDT", str(start + i), 42_000.0 + i % 50, 0.01,
                 "buy", T0 + (start + i) * 1000, T0 + (start + i) * 1000 + 500)
                for i in range(n)]
        return rows_table(TRADES, rows, {"feed": "bench"})
    if table == READINGS:
        rows = [(f"dev-{i % 200}", ("temperature", "humidity")[i % 2], start + i, 20.0 + i % 7,
                 "C", T0 + (start + i) * 1000, T0 + (start + i) * 1000 + 300, "plant")
                for i in range(n)]
        return rows_table(READINGS, rows, {"feed": "plant"})
    rows = [("okx", "BTC-USDT", "BTC-USDT", "spot", T0 + (start + i) * 1000,
             T0 + (start + i) * 1000 + 200, 0, ("bid", "ask")[i % 2], 42_000.0 + i % 97,
             0.5, 0.5, start + i + 1, start + i) for i in range(n)]
    data = rows_table(BOOKS, rows, {"feed": "books"})
    return data  # dictionary-encoded strings, as BookColumns.to_arrow(dictionary=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class GilProbe:
    """A Python thread that spins while inserts run: its CPU / their wall time is the
    share of a core that Python code elsewhere could use meanwhile."""

    def __init__(self) -> None:
        self.on = threading.Event()
        self.stop = False
        self.cpu = 0.0
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while not self.stop:
            if not self.on.wait(0.05):
                continue
            t0 = time.thread_time()
            while self.on.is_set():
                sum(range(200))
            self.cpu += time.thread_time() - t0


def _stream_bytes(data: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return sink.getvalue().to_pybytes()


def _write_stream(data: pa.Table) -> str:
    fd, path = tempfile.mkstemp(prefix="feedhouse-bench-", suffix=".arrows")
    with os.fdopen(fd, "wb") as handle, ipc.new_stream(handle, data.schema) as writer:
        writer.write_table(data)
    return path


def _head(table: str, data: pa.Table, token: str) -> str:
    columns = ", ".join(identifier(c) for c in data.column_names)
    return f"INSERT INTO {identifier(table)} ({columns}) SETTINGS insert_deduplication_token = '{token}'"


def one(way: str, client, table: str, data: pa.Table, token: str) -> None:
    """One insert of `data` into `table` the given way (or one client-side stage)."""
    conn = client._backend._handle.conn
    if way == "client":
        client.insert_arrow(table, data, settings={"insert_deduplication_token": token})
    elif way == "bulk":
        path = _write_stream(data)
        try:
            columns = ", ".join(identifier(c) for c in data.column_names)
            client.command(f"INSERT INTO {identifier(table)} ({columns}) FROM INFILE '{path}' "
                           f"SETTINGS insert_deduplication_token = '{token}' FORMAT ArrowStream")
        finally:
            os.unlink(path)
    elif way == "infile":
        path = _write_stream(data)
        try:
            columns = ", ".join(identifier(c) for c in data.column_names)
            conn.query(f"INSERT INTO {identifier(table)} ({columns}) FROM INFILE '{path}' "
                       f"SETTINGS insert_deduplication_token = '{token}' FORMAT ArrowStream",
                       "TabSeparated")
        finally:
            os.unlink(path)
    elif way == "send_insert":
        inserter = conn.send_insert(_head(table, data, token), "ArrowStream")
        inserter.append(_stream_bytes(data))
        inserter.finish()
    elif way == "python":
        rows = data  # noqa: F841 - read by name by chDB's Python() table function
        conn.query(f"{_head(table, data, token)} SELECT * FROM Python(rows)", "TabSeparated")
    elif way == "store":
        insert_arrow(client, table, data, token)
    elif way == "arrow_file":
        arrow_buffer(data)[1].to_pybytes()
    elif way == "arrow_stream":
        _stream_bytes(data)
    elif way == "tmpfile":
        blob = _stream_bytes(data)  # timed too: subtract arrow_stream
        with tempfile.NamedTemporaryFile(suffix=".native", delete=False) as tmp:
            tmp.write(blob)
        os.unlink(tmp.name)
    else:
        raise ValueError(way)


def measure(client, way: str, table: str, batches: list[pa.Table], tag: str,
            gil: GilProbe | None) -> dict:
    client.command(f"TRUNCATE TABLE {table}")
    one(way, client, table, batches[0], f"{tag}:warm")  # not counted
    g0 = gil.cpu if gil else 0.0
    c0, t0, w0 = _cpu(), time.thread_time(), time.perf_counter()
    if gil:
        gil.on.set()
    for k, data in enumerate(batches[1:]):
        one(way, client, table, data, f"{tag}:{k}")
    wall = time.perf_counter() - w0
    thread = time.thread_time() - t0
    if gil:
        gil.on.clear()
        time.sleep(0.06)  # the probe thread books its CPU
    spun = (gil.cpu - g0) if gil else 0.0
    n = len(batches) - 1
    return {"cpu_ms": (_cpu() - c0 - spun) / n * 1e3, "thread_ms": thread / n * 1e3,
            "wall_ms": wall / n * 1e3, "gil_free": spun / wall}


def inserts_for(size: int, budget_rows: int) -> int:
    return max(4, min(25, budget_rows // size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ways", default=",".join(WAYS + STAGES))
    parser.add_argument("--tables", default=f"{TRADES},{READINGS},{BOOKS}")
    parser.add_argument("--sizes", default="1,200,1000,5000,50000")
    parser.add_argument("--rows", type=int, default=200_000, help="rows per way, size and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gil", action="store_true", help="measure gil_free (see above)")
    args = parser.parse_args()
    ways, tables = args.ways.split(","), args.tables.split(",")
    sizes = [int(x) for x in args.sizes.split(",")]
    home = Path(tempfile.mkdtemp(prefix="feedhouse-insert-paths-"))
    runs: dict = {}
    gil = GilProbe() if args.gil else None
    start = 0
    load = os.getloadavg()
    try:
        settings = load_settings(home=str(home))
        init_schema(settings)
        with warehouse(settings) as client:
            for table in tables:
                client.command(f"SYSTEM STOP MERGES {table}")
            for r in range(args.rounds):
                for table in tables:
                    for size in sizes:
                        count = inserts_for(size, args.rows)
                        for way in (ways if r % 2 == 0 else ways[::-1]):
                            batches = [table_rows(table, size, start + k * size) for k in range(count)]
                            start += count * size
                            got = measure(client, way, table, batches, f"{way}:{start}", gil)
                            runs.setdefault((table, way, size), []).append(got)
    finally:
        if gil:
            gil.stop = True
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(report(runs, tables, ways, sizes, load, os.getloadavg()), indent=1))


def report(runs: dict, tables: list[str], ways: list[str], sizes: list[int], load0, load1) -> dict:
    out: dict = {"load_start": [round(x, 1) for x in load0], "load_end": [round(x, 1) for x in load1]}
    for table in tables:
        for way in ways:
            cell = {}
            for key in ("cpu_ms", "thread_ms", "wall_ms", "gil_free"):
                cell[key] = {n: round(float(np.median([g[key] for g in runs[(table, way, n)]])), 3)
                             for n in sizes}
            if len(sizes) > 1:
                for key in ("cpu_ms", "thread_ms"):
                    slope, fixed = np.polyfit(sizes, [cell[key][n] for n in sizes], 1)
                    cell[f"{key}_fit"] = {"fixed_ms": round(float(fixed), 3),
                                          "us_per_row": round(float(slope) * 1e3, 3)}
            out[f"{table} {way}"] = cell
    return out


if __name__ == "__main__":
    main()
