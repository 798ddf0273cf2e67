"""The load generator's MQTT packets: what paho's decoder reads back, and the broker's
byte stream split into packets however it arrives."""

from __future__ import annotations

import pytest
from paho.mqtt import _packet
from paho.mqtt.client import MQTTv5, MQTTv311

from feedhouse.app.mqtt.wire import (
    PUBACK,
    PacketReader,
    PublishEncoder,
    WireError,
    acked_mid,
    as_duplicate,
    varint,
)


@pytest.mark.parametrize("v5", [False, True])
@pytest.mark.parametrize("size", [0, 100, 200, 20_000])  # remaining length of 1, 2, 3 bytes
def test_publish_packets_decode_in_paho(v5, size):
    payload = b"x" * size
    packet = PublishEncoder(1, v5).encode("plant/site0/dev00001/temperature", payload, 513)
    header, rest = packet[0], PacketReader().feed(packet)
    assert len(rest) == 1 and rest[0][0] == 0x30
    decoded = _packet.decode_publish(header, rest[0][1], MQTTv5 if v5 else MQTTv311)
    assert (decoded.topic, decoded.mid, decoded.qos, decoded.payload, decoded.dup) == (
        b"plant/site0/dev00001/temperature", 513, 1, payload, False)
    assert _packet.decode_publish(as_duplicate(packet)[0], rest[0][1], MQTTv311 if not v5
                                  else MQTTv5).dup


def test_packets_split_anywhere_are_reassembled():
    stream = b"".join(bytes([PUBACK, 2]) + mid.to_bytes(2, "big") for mid in range(1, 300))
    stream += bytes([0x30]) + varint(300) + b"\x00\x01t" + b"p" * 297  # a 300-byte body
    reader, packets = PacketReader(), []
    for i in range(0, len(stream), 3):
        packets += reader.feed(stream[i:i + 3])
    assert [acked_mid(body) for kind, body in packets if kind == PUBACK] == list(range(1, 300))
    assert packets[-1][0] == 0x30 and len(packets[-1][1]) == 300
    assert reader.buf == bytearray()


def test_a_remaining_length_beyond_four_bytes_is_refused():
    with pytest.raises(WireError):
        PacketReader().feed(bytes([PUBACK, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]))
