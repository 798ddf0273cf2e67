"""MQTT: sensor readings through Mosquitto into chDB, sustained, with the load generator
on the same machine: `feedhouse drill mqtt` (no faults) run as a subprocess.

The drill starts Mosquitto and `feedhouse run` on an MQTT feed (fresh store), publishes
readings at `--rate` for `--seconds` (QoS 1), waits until the broker holds no
unacknowledged message (acks follow commits), then counts the store. Its JSON verdict
gives readings_per_s (unique readings stored / (last insert - first receive)) and lost
(unique sent - unique stored).
"""

from __future__ import annotations

import json
import shutil
import subprocess

from bench.common import FEEDHOUSE, ROOT, Config, Figure, measured, shell


def command(cfg: Config, work) -> list[str]:
    return [FEEDHOUSE, "drill", "mqtt", "--rate", str(cfg.mqtt_rate), "--seconds",
            str(cfg.mqtt_s), "--duplicates", "0", "--work-dir", str(work)]


def run(cfg: Config) -> list[Figure]:
    work = cfg.workdir / "mqtt"
    args = command(cfg, work)
    failures = []
    for _ in range(2):  # a drill that could not start (no verdict at all) is tried once more
        shutil.rmtree(work, ignore_errors=True)
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                             timeout=cfg.mqtt_s * 4 + 300)
        lines = [ln for ln in out.stdout.strip().splitlines() if ln.startswith("{")]
        if lines:
            break
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        failures.append(f"drill mqtt exit {out.returncode}: {tail[:200]}")
    else:
        raise RuntimeError(" | ".join(failures))
    result = json.loads(lines[-1])
    shutil.rmtree(work, ignore_errors=True)
    cmd = shell(["feedhouse", *args[1:]])
    settings = {"offered_per_s": cfg.mqtt_rate, "seconds": cfg.mqtt_s,
                "sent": result["sent"], "unique_sent": result["unique_sent"],
                "published_per_s": round(result["sent"] / cfg.mqtt_s),
                "stored": result["stored"], "duplicates_stored": result["duplicates_stored"],
                "drained": result["drained"], "drill_ok": result["ok"], "qos": 1,
                "broker": "Mosquitto (docker/mosquitto/mosquitto.conf), loopback",
                "failed_starts": failures}
    return [
        measured("mqtt_readings_per_s", "readings/s", cmd, [result["readings_per_s"]],
                 goal=">= 40,000", settings=settings),
        measured("mqtt_lost", "readings", cmd, [result["lost"]], goal="<= 0",
                 settings=settings),
    ]
