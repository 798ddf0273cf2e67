"""`feedhouse mqtt-load`: publish realistic sensor readings to an MQTT broker."""

from __future__ import annotations

import orjson
import typer

from feedhouse.app.mqtt.load import LoadPlan, run_load
from feedhouse.core.errors import FeedhouseError
from feedhouse.core.settings import MqttSettings


def mqtt_load(
    host: str = typer.Option("127.0.0.1", help="broker host"),
    port: int = typer.Option(1883, help="broker port"),
    rate: float = typer.Option(1000.0, min=1, help="messages per second (duplicates included)"),
    devices: int = typer.Option(200, min=1, help="devices"),
    sensors: int = typer.Option(5, min=1, help="sensors per device"),
    seconds: float = typer.Option(10.0, min=0.1, help="how long to publish"),
    qos: int = typer.Option(1, min=0, max=2, help="publish QoS"),
    duplicates: float = typer.Option(0.0, min=0.0, max=1.0, help="fraction republished"),
    topic_prefix: str = typer.Option("plant", help="first topic level"),
    protocol: str = typer.Option("3.1.1", help="MQTT protocol: 3.1.1 or 5"),
    clients: int = typer.Option(0, min=0, help="publisher connections (0: one per 30k msgs/s)"),
    seq_start: int = typer.Option(0, min=0, help="first sequence number of every sensor"),
    readings_per_message: int = typer.Option(
        1, min=1, help="readings per message: above 1, a JSON array of that many consecutive "
        "samples of one sensor (feed payload_format: json_array)"),
) -> None:
    """Publish readings at --rate messages/s for --seconds; last stdout line: JSON of what
    was sent (messages: count, unique, duplicates, acked, rate; readings: readings,
    unique_readings, duplicate_readings)."""
    if protocol not in ("3.1.1", "5"):
        raise FeedhouseError(f"--protocol must be 3.1.1 or 5, not {protocol!r}")
    mqtt = MqttSettings(host=host, port=port, protocol=protocol)
    plan = LoadPlan(rate=rate, devices=devices, sensors=sensors, seconds=seconds, qos=qos,
                    duplicates=duplicates, topic_prefix=topic_prefix, clients=clients,
                    seq_start=seq_start, readings_per_message=readings_per_message)
    try:
        result = run_load(mqtt, plan)
    except OSError as exc:
        raise FeedhouseError(f"mqtt-load: cannot reach {host}:{port} ({exc})") from None
    typer.echo(orjson.dumps(result).decode())


def register(app: typer.Typer) -> None:
    app.command("mqtt-load")(mqtt_load)
