"""CPU µs per MQTT message of each ingest stage, the per-message path and the columnar path
side by side in one process (same messages, same store, interleaved rounds).

    python -m bench.mqtt_stages [--messages 40000] [--batch 2000] [--readings-per-message 1]

Messages are what the load generator publishes (200 devices x 5 sensors, JSON objects,
or JSON arrays of N samples). Per round of `--batch` messages each stage is timed with
`time.process_time()` (CPU of the whole process, so chDB's native insert threads count):

- parse: `MessageBatch` -> `ParsedBatch` (before: one `ReadingParser.__call__` per message
  and a `Reading` tuple per reading; after: `parse_columns`, msgspec into columns);
- dedup: keys + `DedupWindow.filter` (before: blake2b over a key string per reading, as
  before issue 17; after: xxh3 over the same strings, from columns);
- arrow: the sink's insert table + `make_batch` (before: `rows_table` from tuples; after:
  `ReadingColumns.to_arrow`);
- insert: `insert_arrow` into an embedded chDB store (the same table either way).

What it leaves out (see `bench.mqtt_profile` for the whole process): paho's network
threads, the source hand-over, Bytewax's loop, acks, the ledger write.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from hashlib import blake2b
from pathlib import Path

import numpy as np
import orjson

from dataflows.dedup.stage import dedup_parsed
from dataflows.dedup.window import DedupWindow
from dataflows.frames import MessageBatch
from dataflows.parse.columns import ReadingColumns
from dataflows.parse.readings import reading_parser
from dataflows.parse.stage import ParsedBatch, _parse_each, parse_batch
from dataflows.sink.batches import READINGS, READINGS_SCHEMA, make_batch, rows_table
from feedhouse.core.config import load_settings
from feedhouse.core.settings import FeedSettings
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import init_schema

SENSORS = [("temperature", "C"), ("humidity", "%"), ("pressure", "hPa"), ("vibration", "mm/s"),
           ("current", "A")]


def messages(n: int, per_message: int, seed: int = 7) -> tuple[list, list[str]]:
    rng = random.Random(seed)
    series = [(f"plant/site{d % 4}/dev{d:05d}/{s}", u) for d in range(200) for s, u in SENSORS]
    seqs = [0] * len(series)
    ts = 1_763_700_000_000_000
    msgs, topics = [], []
    for i in range(n):
        k = i % len(series)
        topic, unit = series[k]
        samples = []
        for _ in range(per_message):
            samples.append({"seq": seqs[k], "value": round(rng.uniform(0, 100), 3),
                            "ts": ts + i * 20, "unit": unit})
            seqs[k] += 1
        payload = orjson.dumps(samples[0] if per_message == 1 else samples)
        msgs.append((ts + i * 20 + 500, payload))
        topics.append(topic)
    return msgs, topics


def old_reading_keys(readings) -> np.ndarray:
    """The dedup keys before issue 17: blake2b-64 of the key string, from tuples."""
    return np.fromiter(
        (int.from_bytes(blake2b(f"{r.device_id}\x1f{r.sensor}\x1f{r.seq}".encode(),
                                digest_size=8).digest(), "little") for r in readings),
        dtype=np.uint64, count=len(readings))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--readings-per-message", type=int, default=1)
    args = ap.parse_args()
    per = args.readings_per_message
    fmt = "json" if per == 1 else "json_array"
    feed = FeedSettings(name="plant", kind="mqtt", mqtt={"payload_format": fmt})
    parser = reading_parser(feed)

    def one_by_one(raw, received_ts, topic):  # hides parse_columns: the per-message path
        return parser(raw, received_ts, topic)

    msgs, topics = messages(args.messages, per)
    home = Path(tempfile.mkdtemp(prefix="feedhouse-mqtt-stages-"))
    settings = load_settings(home=str(home), feeds=[{"name": "plant", "kind": "mqtt"}])
    cpu = {f"{side}.{stage}": 0.0 for side in ("before", "after")
           for stage in ("parse", "dedup", "arrow", "insert")}
    windows = {"before": DedupWindow(600), "after": DedupWindow(600)}
    clock = time.process_time
    init_schema(settings)
    with warehouse(settings) as client:
        for r, start in enumerate(range(0, len(msgs), args.batch)):
            batch = MessageBatch("plant", "mqtt", "feedhouse-0", start, msgs[start:start + args.batch],
                                 [], topics[start:start + args.batch])
            sides = ("before", "after") if r % 2 == 0 else ("after", "before")
            for side in sides:
                t0 = clock()
                parsed: ParsedBatch = (_parse_each(batch, one_by_one) if side == "before"
                                       else parse_batch(batch, parser))
                t1 = clock()
                if side == "before":
                    keys = old_reading_keys(parsed.readings)
                    ts = np.fromiter((x[5] for x in parsed.readings), np.int64)
                    keep = windows[side].filter(keys, ts)
                    rows = [x for x, k in zip(parsed.readings, keep, strict=True) if k]
                else:
                    rows = dedup_parsed(windows[side], parsed).readings
                t2 = clock()
                if side == "before":
                    data = rows_table(READINGS, rows, {"feed": "plant"})
                else:
                    data = ReadingColumns.concat([rows]).to_arrow(READINGS_SCHEMA, "plant")
                batch_ = make_batch(READINGS, "plant", f"{side}:{start}", data)
                t3 = clock()
                client.insert_arrow(READINGS, batch_.data,
                                    settings={"insert_deduplication_token": batch_.token})
                t4 = clock()
                for stage, dt in zip(("parse", "dedup", "arrow", "insert"),
                                     (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    cpu[f"{side}.{stage}"] += dt
    n = len(msgs)
    out = {k: round(v * 1e6 / n, 2) for k, v in cpu.items()}
    for side in ("before", "after"):
        out[f"{side}.total"] = round(sum(v for k, v in out.items()
                                         if k.startswith(side + ".")), 2)
    print(json.dumps({"messages": n, "readings_per_message": per, "batch": args.batch,
                      "cpu_us_per_message": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
