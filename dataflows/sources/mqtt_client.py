"""paho-mqtt 2 clients built from `MqttSettings`: protocol, session, TLS, credentials.

Used by the MQTT source (subscribers: persistent session, manual acks, the tuned
`dataflows.sources.paho_subscriber.SubscriberClient`) and by plain paho clients (TLS tests).
Persistent sessions are `clean_session=False` on MQTT 3.1.1 and `clean_start=False` plus
a `SessionExpiryInterval` on MQTT 5.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from feedhouse.core.settings import MqttSettings


def protocol_of(settings: MqttSettings) -> mqtt.MQTTProtocolVersion:
    return mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311


def make_client(
    settings: MqttSettings,
    client_id: str,
    *,
    persistent: bool,
    manual_ack: bool = False,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A configured, unconnected client (`connect_args` gives what `connect` needs)."""
    v5 = settings.protocol == "5"
    client = client_class(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol_of(settings),
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls or settings.ca_file or settings.client_cert:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.client_cert) if settings.client_cert else None,
            keyfile=str(settings.client_key) if settings.client_key else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.reconnect_delay_set(settings.reconnect_initial_s, settings.reconnect_max_s)
    return client


def connect_args(settings: MqttSettings, *, persistent: bool) -> dict:
    """Keyword arguments for `client.connect`/`connect_async` (v5 session properties)."""
    args: dict = {"host": settings.host, "port": settings.port, "keepalive": settings.keepalive_s}
    if settings.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = settings.session_expiry_s if persistent else 0
        args["clean_start"] = not persistent
        args["properties"] = props
    return args


def subscriptions(settings: MqttSettings, index: int) -> list[str]:
    """What subscriber `index` subscribes to.

    Shared (`share_group` set): every filter as `$share/<group>/<filter>`, and the broker
    spreads messages over the group's clients. Static (`share_group: ''`): client i takes
    `topics[i::clients]` as plain subscriptions. Mosquitto 2.0.11 does not restore shared
    subscriptions from persistence: after a broker restart, messages published before
    the subscribers re-subscribe are dropped. Plain subscriptions are restored, so static
    partitioning loses nothing across a broker restart.
    """
    if settings.share_group:
        return [f"$share/{settings.share_group}/{t}" for t in settings.topics]
    return settings.topics[index :: settings.clients]
