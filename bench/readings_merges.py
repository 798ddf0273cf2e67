"""chDB's merges of small iot.readings parts: MergeMutate CPU per insert by table setting.

    python -m bench.readings_merges [--setting default|stop|"min_parts_to_merge_at_once=20"]
                                    [--rate 16] [--rows 600] [--seconds 12]

An embedded session in a temporary folder with the `iot.readings` schema (migration 003
only, so the setting under test is the only one), `rate` inserts per second of `rows`
rows (200 devices x 5 sensors), then 1 s for merges to finish. `stop` runs `SYSTEM STOP
MERGES` (a probe: the cost of the inserts alone). Prints CPU ms per insert by thread
group (/proc of this process) and the active parts and highest merge level at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import chdb.session

from bench.mqtt_ingest import threads_cpu_s
from feedhouse.core.paths import sql_dir


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", default="default")
    for name, default in (("rate", 16.0), ("rows", 600), ("seconds", 12.0)):
        ap.add_argument(f"--{name}", type=type(default), default=default)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="feedhouse-readings-merges-") as home:
        session = chdb.session.Session(home)
        session.query("CREATE DATABASE iot")
        session.query((sql_dir() / "migrations" / "003_iot.sql").read_text().split(";\n")[0])
        if args.setting == "stop":
            session.query("SYSTEM STOP MERGES iot.readings")
        elif args.setting != "default":
            session.query(f"ALTER TABLE iot.readings MODIFY SETTING {args.setting}")
        before, start, n = threads_cpu_s(os.getpid()), time.monotonic(), 0
        while time.monotonic() - start < args.seconds:
            session.query(
                "INSERT INTO iot.readings (device_id, sensor, seq, value, unit, device_ts, "
                "received_ts, site, feed) SELECT 'dev' || toString(number % 200), "
                f"'s' || toString(number % 5), {n * args.rows} + number, number * 0.5, 'C', "
                f"now64(6), now64(6), 'site1', 'f' FROM numbers({args.rows})")
            n += 1
            time.sleep(max(0.0, start + n / args.rate - time.monotonic()))
        time.sleep(1)
        after = threads_cpu_s(os.getpid())
        parts = session.query("SELECT count(), max(level) FROM system.parts "
                              "WHERE table = 'readings' AND active", "CSV").bytes().decode()
        session.close()
    print(json.dumps({
        "setting": args.setting, "inserts": n, "load_avg": round(os.getloadavg()[0], 1),
        "ms_cpu_per_insert": {k: round((v - before.get(k, 0.0)) * 1e3 / n, 2)
                              for k, v in sorted(after.items()) if v > before.get(k, 0.0)},
        "active_parts,max_level": parts.strip()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
