"""MQTT: sensor readings through Mosquitto into chDB, sustained, with the load generator
on the same machine: `feedhouse drill mqtt` (no faults) run as a subprocess.

The drill starts Mosquitto and `feedhouse run` on an MQTT feed (fresh store), publishes
readings at `--rate` for `--seconds` (QoS 1), waits until the broker holds no
unacknowledged message (acks follow commits), then counts the store. Its JSON verdict
gives readings_per_s (unique readings stored / (last insert - first receive)) and lost
(unique sent - unique stored).

Two figures of readings/s, the issue's unit: `mqtt_readings_per_s` with one reading per
MQTT message (every reading costs a publish, a broker delivery, a PUBACK and an ack), and
`mqtt_batched_readings_per_s` with `mqtt_batch` readings per message (batched telemetry:
a device publishes a JSON array of consecutive samples of one sensor), whose settings
give the messages/s behind it.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from bench.common import FEEDHOUSE, ROOT, Config, Figure, measured, shell


def command(cfg: Config, work, readings_per_message: int = 1) -> list[str]:
    args = [FEEDHOUSE, "drill", "mqtt", "--rate", str(cfg.mqtt_rate), "--seconds",
            str(cfg.mqtt_s), "--duplicates", "0", "--work-dir", str(work)]
    if readings_per_message > 1:
        args += ["--readings-per-message", str(readings_per_message)]
    return args


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


def sustained(cfg: Config, key: str, readings_per_message: int) -> list[Figure]:
    """`key` (readings/s) and `<key minus _readings_per_s>_lost` over mqtt_repeats runs."""
    work = cfg.workdir / f"mqtt-{readings_per_message}"
    args = command(cfg, work, readings_per_message)
    results, failures = [], []
    for _ in range(cfg.mqtt_repeats):
        result, failed = run_once(cfg, args, work)
        results.append(result)
        failures.extend(failed)
    cmd = shell(["feedhouse", *args[1:]])
    settings = {"offered_readings_per_s": cfg.mqtt_rate, "seconds": cfg.mqtt_s, "qos": 1,
                "readings_per_message": readings_per_message,
                "runs": [{k: r.get(k) for k in ("sent", "sent_readings", "unique_sent",
                                                "stored", "lost", "duplicates_stored",
                                                "readings_per_s", "drained", "ok")}
                         for r in results],
                "published_messages_per_s": [round(r["sent"] / cfg.mqtt_s) for r in results],
                "stored_messages_per_s": [round(r["readings_per_s"] / readings_per_message)
                                          for r in results],
                "broker": "Mosquitto (docker/mosquitto/mosquitto.conf), loopback",
                "failed_starts": failures}
    prefix = key.removesuffix("_readings_per_s")
    lost = measured(f"{prefix}_lost", "readings", cmd, [r["lost"] for r in results],
                    goal="<= 0", settings=settings,
                    note="the worst run, not the median: any loss counts")
    lost.value = max(lost.repeats)
    return [
        measured(key, "readings/s", cmd, [r["readings_per_s"] for r in results],
                 goal=">= 40,000", settings=settings),
        lost,
    ]


def run(cfg: Config) -> list[Figure]:
    return [*sustained(cfg, "mqtt_readings_per_s", 1),
            *sustained(cfg, "mqtt_batched_readings_per_s", cfg.mqtt_batch)]
