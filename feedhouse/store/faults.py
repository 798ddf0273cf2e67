"""The fault injector (drills and tests): make the warehouse unreachable or slow.

It reads a small JSON file named by the `fault_file` setting, e.g.
{"outage": true, "latency_ms": 50} (every use of the warehouse), or
{"row_latency_us": 1000} (each insert, per row: a store that takes rows slower than
offered, however they are batched). Every process that shares the file sees a switch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from feedhouse.core.errors import WarehouseUnavailable


def read_faults(fault_file: Path | None) -> dict[str, Any]:
    if fault_file is None:
        return {}
    try:
        return json.loads(Path(fault_file).read_text() or "{}")
    except (FileNotFoundError, ValueError):
        return {}


def write_faults(fault_file: Path, **faults: Any) -> None:
    """Switch faults on or off (atomically) for every process that shares the file."""
    tmp = Path(f"{fault_file}.tmp")
    tmp.write_text(json.dumps(faults))
    os.replace(tmp, fault_file)


def apply_faults(fault_file: Path | None) -> None:
    faults = read_faults(fault_file)
    if faults.get("outage"):
        raise WarehouseUnavailable("ClickHouse unreachable (fault injector: outage)")
    latency = float(faults.get("latency_ms", 0) or 0)
    if latency > 0:
        time.sleep(latency / 1000.0)


def apply_row_faults(fault_file: Path | None, rows: int) -> None:
    """The fault injector's per-row insert delay (`row_latency_us`), if any."""
    per_row_us = float(read_faults(fault_file).get("row_latency_us", 0) or 0)
    if per_row_us > 0:
        time.sleep(per_row_us * rows / 1e6)
