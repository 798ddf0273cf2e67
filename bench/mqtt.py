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


def run_once(cfg: Config, args: list[str], work) -> tuple[dict, list[str]]:
    """One sustained run: the drill's verdict, and why earlier starts failed (if any)."""
    failures = []
    for _ in range(2):  # a drill that could not start (no verdict at all) is tried once more
        shutil.rmtree(work, ignore_errors=True)
        out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                             timeout=cfg.mqtt_s * 4 + 300)
        lines = [ln for ln in out.stdout.strip().splitlines() if ln.startswith("{")]
        if lines:
            shutil.rmtree(work, ignore_errors=True)
            return json.loads(lines[-1]), failures
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        failures.append(f"drill mqtt exit {out.returncode}: {tail[:200]}")
    raise RuntimeError(" | ".join(failures))


def run(cfg: Config) -> list[Figure]:
    work = cfg.workdir / "mqtt"
    args = command(cfg, work)
    results, failures = [], []
    for _ in range(cfg.mqtt_repeats):
        result, failed = run_once(cfg, args, work)
        results.append(result)
        failures.extend(failed)
    cmd = shell(["feedhouse", *args[1:]])
    settings = {"offered_per_s": cfg.mqtt_rate, "seconds": cfg.mqtt_s, "qos": 1,
                "runs": [{k: r[k] for k in ("sent", "unique_sent", "stored", "lost",
                                            "duplicates_stored", "readings_per_s",
                                            "drained", "ok")} for r in results],
                "published_per_s": [round(r["sent"] / cfg.mqtt_s) for r in results],
                "broker": "Mosquitto (docker/mosquitto/mosquitto.conf), loopback",
                "failed_starts": failures}
    lost = measured("mqtt_lost", "readings", cmd, [r["lost"] for r in results], goal="<= 0",
                    settings=settings, note="the worst run, not the median: any loss counts")
    lost.value = max(lost.repeats)
    return [
        measured("mqtt_readings_per_s", "readings/s", cmd,
                 [r["readings_per_s"] for r in results], goal=">= 40,000", settings=settings),
        lost,
    ]
