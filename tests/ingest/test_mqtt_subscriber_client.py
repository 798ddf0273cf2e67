"""`SubscriberClient` (buffered reads, direct deliveries, batched PUBACKs) on real Mosquitto:
every message arrives once, whole and in order, whatever path it takes (the fast decode,
or paho's own for QoS 2 and v5 properties), and `ack_many` acknowledges them all."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dataflows.sources.mqtt import Subscriber
from dataflows.sources.mqtt_client import connect_args, make_client
from dataflows.sources.paho_subscriber import READ_SIZE, SubscriberClient
from feedhouse.app.mqtt.broker import BrokerStats
from feedhouse.core.settings import MqttSettings
from tests.support.mqtt import broker_fixture  # noqa: F401

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


class Received:
    def __init__(self) -> None:
        self.items: list[tuple[int, int, str, bytes, str]] = []  # mid, qos, topic, payload, path
        self.lock = threading.Lock()

    def delivery(self, mid, qos, topic, payload) -> None:
        with self.lock:
            self.items.append((mid, qos, topic, payload, "fast"))

    def message(self, client, userdata, message) -> None:
        with self.lock:
            self.items.append((message.mid, message.qos, message.topic, message.payload, "paho"))

    def wait(self, n: int, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        while len(self.items) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.items)


def subscriber(broker, protocol: str, received: Received, qos: int = 1) -> SubscriberClient:
    settings = MqttSettings(port=broker.port, protocol=protocol, qos=qos)
    client = make_client(settings, f"sub-{protocol}", persistent=True, manual_ack=True,
                         client_class=SubscriberClient)
    client.on_delivery = received.delivery
    client.on_message = received.message
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe("t/#", qos)
    client.connect(**connect_args(settings, persistent=True))
    client.loop_start()
    assert subscribed.wait(10)
    return client


def publish_all(port: int, protocol: str, messages, properties=None) -> None:
    proto = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=proto)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(topic, payload, qos=qos, properties=properties)
             for topic, payload, qos in messages]
    for info in infos:
        info.wait_for_publish(20)
    pub.disconnect()
    pub.loop_stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_many_small_and_one_large_message_arrive_whole_in_order_and_are_acked(broker, protocol):
    received = Received()
    client = subscriber(broker, protocol, received)
    big = bytes(range(256)) * (READ_SIZE // 256 * 2 + 3)  # spans several buffered reads
    messages = [(f"t/{i % 7}/ü", f'{{"n": {i}}}'.encode(), 1) for i in range(5000)]
    messages.insert(2500, ("t/big", big, 1))
    try:
        publish_all(broker.port, protocol, messages)
        messages.append(("t/q0", b"at most once", 0))  # after: QoS 0 may overtake QoS 1
        publish_all(broker.port, protocol, messages[-1:])
        got = received.wait(len(messages))
        assert [(t, p, q) for _, q, t, p, _ in got] == messages
        assert {path for *_, path in got} == {"fast"}  # no properties, QoS <= 1
        client.ack_many([mid for mid, qos, *_ in got if qos == 1])
        stats = BrokerStats(broker.port)
        assert stats.wait("held", lambda n: n == 0, 20, 0.0)  # every PUBACK reached it
    finally:
        client.disconnect()
        client.loop_stop()


def test_qos2_and_v5_properties_take_pahos_path(broker):
    received = Received()
    client = subscriber(broker, "5", received, qos=2)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("source", "test")
    try:
        publish_all(broker.port, "5", [("t/a", b"with properties", 1)], properties=props)
        publish_all(broker.port, "5", [("t/b", b"exactly once", 2)])
        publish_all(broker.port, "5", [("t/c", b"plain", 1)])
        got = received.wait(3)
        # a QoS 2 message is delivered after its PUBREC/PUBREL round trip, so the QoS 1
        # message published after it may come first: the paths are what is asserted
        assert sorted((t, p, path) for _, _, t, p, path in got) == [
            ("t/a", b"with properties", "paho"), ("t/b", b"exactly once", "paho"),
            ("t/c", b"plain", "fast")]
    finally:
        client.disconnect()
        client.loop_stop()


def _publish(topic: str, payload: bytes, qos: int, mid: int = 0) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode()
    if qos:
        body += mid.to_bytes(2, "big")
    body += payload
    header = bytes([0x30 | (qos << 1)])
    n, length = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (128 if n else 0)])
        if not n:
            return header + length + body


def test_buffered_publishes_are_delivered_in_one_loop_up_to_what_paho_must_decode():
    """The loop over whole buffered packets stops, leaving the rest to paho's own reader,
    at a QoS 2 PUBLISH, an empty topic and a packet not wholly buffered yet."""
    client = SubscriberClient(mqtt.CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    got = Received()
    client.on_delivery = got.delivery
    big = b"x" * 300  # a two-byte remaining length
    fast = [_publish("a/b", b"1", 1, 7), _publish("a/c", big, 1, 8), _publish("a/d", b"", 0)]
    for rest in (_publish("a/e", b"2", 2, 9) + fast[0], _publish("", b"3", 1, 10) + fast[0],
                 _publish("a/f", b"4", 1, 11)[:-1]):  # the last: its final byte still unread
        client._rbuf, client._rpos = b"".join(fast) + rest, 0
        got.items.clear()
        client._deliver_buffered()
        assert [(m, q, t, p) for m, q, t, p, _ in got.items] == [
            (7, 1, "a/b", b"1"), (8, 1, "a/c", big), (0, 0, "a/d", b"")]
        assert client._rpos == sum(map(len, fast))  # paho reads on from the stopping packet
    assert not client._out_packet  # manual acks: nothing acknowledged on delivery


def test_a_buffered_read_goes_to_on_deliveries_in_one_call_as_columns():
    client = SubscriberClient(mqtt.CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    calls: list[tuple] = []
    client.on_delivery = Received().delivery  # only for what paho's own reader hands over
    client.on_deliveries = lambda *columns: calls.append(columns)
    big = b"y" * 20_000  # a three-byte remaining length
    packets = [_publish("a/b", b"1", 1, 7), _publish("a/c", big, 1, 8), _publish("a/d", b"", 0)]
    client._rbuf, client._rpos = b"".join(packets) + _publish("a/e", b"2", 2, 9), 0
    client._deliver_buffered()
    assert calls == [([7, 8, 0], [1, 1, 0], ["a/b", "a/c", "a/d"], [b"1", big, b""])]
    assert client._rpos == sum(map(len, packets)) and client.delivered == 3


def test_a_full_inbox_holds_the_network_thread_until_the_source_drains_it():
    """Backpressure: with the inbox at queue_size, a read's messages wait (so paho stops
    reading the socket and the broker queues) until the source takes some."""
    sub = Subscriber("plant", MqttSettings(queue_size=100), "feedhouse-0")
    sub.generation = 1
    sub._on_deliveries(list(range(100)), [1] * 100, ["t"] * 100, [b"x"] * 100)
    second = threading.Thread(
        target=sub._on_deliveries, args=([7, 8], [1, 1], ["t", "u"], [b"a", b"b"]))
    second.start()
    second.join(0.3)
    assert second.is_alive() and sub.queued == 100  # held while full
    taken = sub.drain(60)  # splits the first read's entry
    second.join(5)
    assert not second.is_alive() and len(taken.mids) == 60
    rest = sub.drain(1000)
    assert taken.mids + rest.mids == [*range(100), 7, 8] and sub.queued == 0
    assert set(rest.gens) == {1} and rest.topics[-1] == "u" and rest.messages[-1][1] == b"b"
    assert rest.messages[-2][0] == rest.messages[-1][0]  # one read: one received_ts
    assert rest.messages[0][0] == taken.messages[0][0]  # the split entry kept its time
