"""The naive MQTT ingest `mqtt_ratio_vs_naive` is measured against: what wiring paho to
ClickHouse usually looks like.

    python -m bench.mqtt_naive --port P --home DIR [--idle-s 3] [--max-s 600]

A stock paho client subscribes to `plant/#` (QoS 1, paho acknowledges on receipt), decodes
each payload with stdlib `json`, takes device, sensor and site from the topic, appends a
row, and every 1,000 rows inserts them row-oriented with clickhouse-connect into its own
embedded chDB store (`iot.readings`), on paho's thread. No contract checks, no dedup, no
ledger, no dead letters, and acks before the insert (a crash loses what is pending).
Prints {ready_cpu_s} once subscribed, then {received, inserted, cpu_s} when no message
came for `--idle-s` seconds (CPU seconds of this process: the difference is the ingest's).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from feedhouse.core.config import load_settings
from feedhouse.store.client import warehouse
from feedhouse.store.migrations import init_schema

BATCH = 1000
COLUMNS = ["device_id", "sensor", "seq", "value", "unit", "device_ts", "received_ts", "site",
           "feed"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("--idle-s", type=float, default=3.0)
    ap.add_argument("--max-s", type=float, default=600.0)
    args = ap.parse_args()
    settings = load_settings(home=args.home, feeds=[{"name": "plant", "kind": "mqtt"}])
    init_schema(settings)
    state = {"received": 0, "inserted": 0, "last": 0.0}
    rows: list = []
    subscribed = threading.Event()
    with warehouse(settings) as client:

        def on_message(c, userdata, msg) -> None:
            now = datetime.now(UTC)
            data = json.loads(msg.payload)
            _, site, device, sensor = msg.topic.split("/")
            rows.append([device, sensor, data["seq"], float(data["value"]), data.get("unit", ""),
                         datetime.fromtimestamp(data["ts"] / 1e6, UTC), now, site, "plant"])
            state["received"] += 1
            state["last"] = time.monotonic()
            if len(rows) >= BATCH:
                client.insert("iot.readings", rows, column_names=COLUMNS)
                state["inserted"] += len(rows)
                rows.clear()

        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="naive")
        sub.on_connect = lambda c, *_: c.subscribe("plant/#", qos=1)
        sub.on_subscribe = lambda *_: subscribed.set()
        sub.on_message = on_message
        sub.connect("127.0.0.1", args.port)
        sub.loop_start()
        subscribed.wait(30)
        print(json.dumps({"ready_cpu_s": time.process_time()}), flush=True)
        started = time.monotonic()
        while time.monotonic() - started < args.max_s:
            time.sleep(0.2)
            last = state["last"]
            if last and time.monotonic() - last >= args.idle_s:
                break
        sub.disconnect()
        sub.loop_stop()
        if rows:
            client.insert("iot.readings", rows, column_names=COLUMNS)
            state["inserted"] += len(rows)
    print(json.dumps({"received": state["received"], "inserted": state["inserted"],
                      "cpu_s": time.process_time()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
