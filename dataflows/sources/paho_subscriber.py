"""A paho client tuned for a subscriber receiving tens of thousands of messages a second.

Measured on the 2-core machine (py-spy --gil on `feedhouse run` during `drill mqtt`),
stock paho 2.2 spends per received message: one select() and three or more recv()
calls (1 byte of command, 1 byte per remaining-length byte, then the rest), a walk of
its topic-callback trie even when no per-topic callback exists (~14 % of the GIL time),
and per acknowledgement a queued packet plus a wake-up write to its socket pair (~14 %).

`SubscriberClient` changes only those paths:
- reads: `_sock_recv` serves paho's small reads from one 256 KiB `recv` and `loop_read`
  handles every packet already read before paho goes back to select(); the read buffer
  is always empty when it does, so select() never sleeps on buffered data;
- callbacks: `on_message` is called directly (this client registers no per-topic ones);
- deliveries: with `on_delivery` set, a QoS 0/1 PUBLISH (v5: one without properties)
  is decoded with a few slices and handed over as (mid, qos, topic, payload), without
  paho's MQTTMessage, struct formats and debug-log formatting; with `on_deliveries` set
  too, every whole message of a buffered read goes to it in one call, as columns;
  anything else (QoS 2, v5 properties, a topic that is no UTF-8) takes paho's own path
  to `on_message`;
- acks: `ack_many` queues the PUBACKs of a whole batch as one write;
- wake-ups: after a read that did not fill the buffer, the network thread sleeps
  `coalesce_s` (default 10 ms) before its next select(), so each wake-up (select, recv,
  paho's loop bookkeeping, the GIL hand-over) serves the messages of those milliseconds at
  once instead of one or two: `python -m bench.mqtt_paho` measures the network threads'
  CPU per message with and without it, side by side. The source polls its inbox every
  5-20 ms, so the few ms a message waits in the socket instead of the inbox add little
  to its latency.
Everything else (TLS, sessions, reconnects, QoS 2, v5) is paho's own code.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.client import PUBACK, PUBLISH, MQTTErrorCode

# on_delivery(mid, qos, topic, payload), called on paho's network thread
OnDelivery = Callable[[int, int, str, bytes], None]
# on_deliveries(mids, qoss, topics, payloads): every message of one buffered read at once
OnDeliveries = Callable[[list[int], list[int], list[str], list[bytes]], None]

READ_SIZE = 256 * 1024
COALESCE_S = 0.010  # network thread's pause after a read that left the buffer unfilled
_PUBACK = struct.Struct("!BBH")
_PUBACK_REC = np.dtype([("cmd", "u1"), ("len", "u1"), ("mid", ">u2")])


class SubscriberClient(mqtt.Client):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock = None  # the socket the buffered bytes came from
        self.on_delivery: OnDelivery | None = None
        self.on_deliveries: OnDeliveries | None = None  # preferred for buffered reads
        self._v5 = self._protocol == mqtt.MQTTv5
        self.coalesce_s = COALESCE_S  # 0: read as soon as anything arrives (paho's way)
        self._short_read = False  # the last socket read did not fill READ_SIZE
        self._gather = False  # that read held plain PUBLISHes: pause before the next
        self.reads = 0  # socket reads and messages delivered (bench.mqtt_paho)
        self.delivered = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing buffered is its
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        pos = self._rpos
        if pos >= len(self._rbuf):
            # raises BlockingIOError when nothing is waiting; b"" when the peer closed
            data = super()._sock_recv(max(bufsize, READ_SIZE))
            self.reads += 1
            self._short_read = len(data) < READ_SIZE
            if len(data) <= bufsize:
                return data
            self._rbuf, pos = data, 0
        end = pos + bufsize
        self._rpos = end
        return self._rbuf[pos:end]

    def keep_alive(self) -> None:
        """Called on the network thread while a callback holds it (the feed's inbox is
        full): paho sends PINGREQ only between reads, so a wait longer than 1.5x the
        keepalive made the broker drop the client and redeliver everything unacknowledged
        (33 times in a 30-minute soak under backpressure). Sends one every half keepalive,
        with whatever else is queued (acks)."""
        keepalive = self._keepalive
        if keepalive and self._sock is not None and \
                mqtt.time_func() - self._last_msg_out >= keepalive / 2:
            self._send_pingreq()
            self.loop_write()

    def _buffered(self) -> bool:
        return self._rsock is self._sock and self._rpos < len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self._buffered():
            rc = super().loop_read(1)
        if (rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._gather and self.coalesce_s
                and not self.want_write()):  # a reply due now (PUBREC, PINGREQ) goes first
            # a short read of plain PUBLISHes: let the next ones gather in the socket, so
            # one wake-up serves them all (anything else paho handles at its own pace)
            self._gather = False
            time.sleep(self.coalesce_s)
        return rc

    def _packet_read(self) -> MQTTErrorCode:
        """Deliver every whole QoS 0/1 PUBLISH already in the read buffer in one loop
        (profiled: paho's per-packet state machine - a 1-byte read for the command, one
        per remaining-length byte, a dict per packet, two lock round trips - was most of
        the network threads' ~8 us per message); anything else, and a packet not wholly
        buffered yet, goes to paho's own `_packet_read`, which reads on from the buffer."""
        if (self.on_delivery is not None and self._in_packet["command"] == 0
                and self._buffered()):
            self._deliver_buffered()
        return super()._packet_read()

    def _deliver_buffered(self) -> None:
        buf, pos, end = self._rbuf, self._rpos, len(self._rbuf)
        v5, manual = self._v5, self._manual_ack
        mids: list[int] = []
        qoss: list[int] = []
        topics: list[str] = []
        payloads: list[bytes] = []
        while pos < end:
            header = buf[pos]
            if header & 0xF0 != PUBLISH or header & 0x06 >= 0x04:  # not PUBLISH, QoS 2 (3)
                break
            # remaining length (at most 4 bytes; one for packets under 128 bytes)
            p = pos + 1
            if p < end and buf[p] < 128:
                length = buf[p]
                p += 1
            else:
                length, shift = 0, 0
                while p < end and p - pos <= 4:
                    byte = buf[p]
                    p += 1
                    length |= (byte & 127) << shift
                    shift += 7
                    if not byte & 128:
                        break
                else:
                    break  # not all buffered, or malformed: paho's path decides
            stop = p + length
            if stop > end or length < 2:
                break
            tlen = (buf[p] << 8) | buf[p + 1]
            start = p + 2 + tlen
            qos = (header & 0x06) >> 1
            mid = 0
            if qos:
                if start + 2 > stop:
                    break
                mid = (buf[start] << 8) | buf[start + 1]
                start += 2
            if v5:
                if start >= stop or buf[start] != 0:  # properties: paho decodes them
                    break
                start += 1
            if tlen == 0 or start > stop:
                break
            try:
                topics.append(buf[p + 2:p + 2 + tlen].decode())
            except UnicodeDecodeError:
                break
            mids.append(mid)
            qoss.append(qos)
            payloads.append(buf[start:stop])
            pos = stop
        self._rpos = pos
        if not mids:
            return
        self.delivered += len(mids)
        self._gather = self._short_read
        with self._in_callback_mutex:
            if self.on_deliveries is not None:  # the whole read at once
                self.on_deliveries(mids, qoss, topics, payloads)
            else:
                for delivery in zip(mids, qoss, topics, payloads, strict=True):
                    self.on_delivery(*delivery)
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        if not manual:
            acks = [mid for mid, qos in zip(mids, qoss, strict=True) if qos == 1]
            if acks:
                self.ack_many(acks)

    def _handle_publish(self) -> MQTTErrorCode:
        on_delivery = self.on_delivery
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if on_delivery is None or qos == 2:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        end = 2 + ((packet[0] << 8) | packet[1])
        mid = 0
        if qos:
            mid = (packet[end] << 8) | packet[end + 1]
            end += 2
        if self._v5:
            if packet[end] != 0:  # properties: paho decodes them
                return super()._handle_publish()
            end += 1
        try:
            topic = packet[2:2 + ((packet[0] << 8) | packet[1])].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        if not topic:
            return super()._handle_publish()  # paho: malformed on 3.1.1, an alias on v5
        self.delivered += 1
        with self._in_callback_mutex:
            on_delivery(mid, qos, topic, bytes(memoryview(packet)[end:]))
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK every QoS 1 message id in `mids` (manual_ack), in one queued write."""
        if mids:
            # one numpy record per PUBACK (0x40, 2, mid big-endian): no struct.pack per id
            packets = np.empty(len(mids), dtype=_PUBACK_REC)
            packets["cmd"] = PUBACK
            packets["len"] = 2
            packets["mid"] = mids
            self._packet_queue(PUBACK, packets.tobytes(), 0, 0)
