"""MQTT source: subscriber clients sharing a `$share/<group>/<filter>` subscription
(or, with `share_group: ''`, each holding its own slice of the topic filters).

One Bytewax partition = one paho client (`<client_id>-<i>`, `feed.mqtt.clients` of them)
with a persistent session, QoS 1 (or 2) and manual acknowledgements.

Acknowledgement after commit. With recovery on, Bytewax calls a source partition's
`snapshot()` at the end of epoch E only after epoch E-1 has been committed, and an epoch
commits only after every `FixedPartitionedSink` partition's `snapshot()` (where the
ClickHouse sink inserts or buffers) has returned. So `snapshot()` acknowledges the
messages emitted before the previous `snapshot()` call (epochs < E), never those of the
epoch now closing, and `close()` acknowledges nothing: unacknowledged messages are
redelivered by the broker and the dedup window drops the repeats.

Connection generations. Message ids are per connection: after a reconnect the broker
redelivers what was not acknowledged, and an old id may name a new message. Every message
carries the generation of the connection it came on; only ids of the current generation
are acknowledged, and none while disconnected.

Backpressure. paho's network thread appends to a bounded deque; when it is full, the
callback waits, so paho stops reading the socket and the broker queues for the session.

Positions. `first_pos` counts messages per partition from max(resume state, now in µs),
so positions never repeat across restarts (insert dedup tokens are built from them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import repeat
from time import time_ns
from typing import NamedTuple

import paho.mqtt.client as mqtt
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from dataflows import metrics
from dataflows.frames import Gap, MessageBatch
from dataflows.sources.mqtt_client import connect_args, make_client, subscriptions
from dataflows.sources.paho_subscriber import SubscriberClient
from feedhouse.core.settings import FeedSettings, MqttSettings

log = logging.getLogger(__name__)
POLL = timedelta(milliseconds=5)
# Batches that grow with load: while the inbox yields small batches, the partition comes
# back after POLL_SMALL instead of POLL, so Bytewax's per-activation cost (its loop, the
# parse/dedup/sink calls, ~15 % of the worker thread at 10k msgs/s with 5-ms polls) is
# paid per SMALL_BATCH messages or more; a full batch comes back at once.
POLL_SMALL = timedelta(milliseconds=20)
SMALL_BATCH = 256

# Test hook: called as hook(partition, positions) just before those messages are acked.
AckHook = Callable[[str, list[int]], None]


def now_us() -> int:
    return time.time_ns() // 1000


class _Connections:
    """Connection state of a feed's subscribers in this process, for the
    feedhouse_feed_connected gauge (labelled by feed): 1 only while every one of them is
    connected - a subscriber down holds its session's messages (and, with static slices,
    its topics), so the FeedDisconnected alert should fire."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, bool]] = {}

    def set(self, feed: str, client_id: str, connected: bool | None) -> None:
        """connected None: the subscriber is gone (closed)."""
        with self._lock:
            clients = self._state.setdefault(feed, {})
            if connected is None:
                clients.pop(client_id, None)
            else:
                clients[client_id] = connected
            up = bool(clients) and all(clients.values())
            metrics.set_connected(feed, up)


CONNECTIONS = _Connections()


class Inbound(NamedTuple):
    """One entry of the inbox: the messages of one socket read, as columns (a plain
    tuple there). Per message, neither thread runs a Python step to hand them over: a
    tuple per message cost ~1.2 us (0.5 on paho's thread, 0.7 to transpose in the source)."""

    gen: int  # connection generation the messages arrived on
    received_ts: int  # µs, when the read returned
    mids: list[int]
    qoss: list[int]
    topics: list[str]
    payloads: list[bytes]


class Drained(NamedTuple):
    """Up to `limit` messages taken from the inbox, as columns."""

    gens: list[int]
    mids: list[int]
    qoss: list[int]
    topics: list[str]
    messages: list[tuple[int, bytes]]  # (received_ts, payload)


class Sent(NamedTuple):
    """The ack handles of one emitted micro-batch, as columns (positions first_pos...)."""

    first_pos: int
    gens: list[int]
    mids: list[int]
    qoss: list[int]


class Subscriber:
    """One paho client on its own network thread, feeding a bounded deque."""

    def __init__(self, feed: str, mqtt_settings: MqttSettings, client_id: str,
                 index: int = 0) -> None:
        self.feed = feed
        self.filters = subscriptions(mqtt_settings, index)
        self.settings = mqtt_settings
        self.client_id = client_id
        self.inbox: deque[tuple] = deque()  # Inbound fields as plain tuples
        self.queued = 0  # messages in the inbox
        self.inbox_lock = threading.Lock()  # inbox + queued: paho thread vs. drain
        self.queue_size = mqtt_settings.queue_size
        self.room = threading.Event()
        # held by paho's network thread while it waits for room (and pings from there):
        # stop() disconnects only after it let go, so the ping's write never sends the
        # DISCONNECT, whose on_disconnect callback would deadlock inside on_message
        self.waiting = threading.Lock()
        self.lock = threading.Lock()  # generation / connected flag vs. acks
        self.generation = 0
        self.connected = False
        self.closing = False
        self.gaps: list[Gap] = []
        self._down_since: int | None = now_us()
        self._down_reason = "connecting"
        client = make_client(mqtt_settings, client_id, persistent=True, manual_ack=True,
                             client_class=SubscriberClient)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_delivery = self._on_delivery
        client.on_deliveries = self._on_deliveries
        self.client = client
        CONNECTIONS.set(feed, client_id, False)  # connecting

    # --- paho thread ----------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("%s: connect refused: %s", self.client_id, reason_code)
            return
        with self.lock:
            self.generation += 1
            self.connected = True
        # Subscribe on every (re)connect, even when the broker reports session_present:
        # idempotent, and it heals a broker that lost a subscription (Mosquitto 2.0.11
        # does not restore shared subscriptions across its restart).
        qos = self.settings.qos
        client.subscribe([(f, qos) for f in self.filters])
        CONNECTIONS.set(self.feed, self.client_id, True)
        if self._down_since is not None and self.generation > 1:
            gap = Gap(self.feed, "mqtt", self._down_since, now_us(), "disconnect",
                      self._down_reason)
            with self.lock:
                self.gaps.append(gap)
        self._down_since = None
        log.info("%s: connected (generation %d)", self.client_id, self.generation)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self.lock:
            self.connected = False
        CONNECTIONS.set(self.feed, self.client_id, False)
        if self._down_since is None:
            self._down_since = now_us()
            self._down_reason = f"{self.client_id}: {reason_code}"
        if not self.closing:
            log.warning("%s: disconnected: %s", self.client_id, reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        """What `SubscriberClient` leaves to paho (QoS 2, v5 properties)."""
        self._on_delivery(message.mid, message.qos, message.topic, message.payload)

    def _on_delivery(self, mid: int, qos: int, topic: str, payload: bytes) -> None:
        self._on_deliveries([mid], [qos], [topic], [payload])

    def _on_deliveries(self, mids: list[int], qoss: list[int], topics: list[str],
                       payloads: list[bytes]) -> None:
        """One buffered read's messages, as one inbox entry, the read's time as their
        received_ts. The inbox may pass queue_size by one read."""
        if self.queued >= self.queue_size:
            self.room.clear()
            with self.waiting:
                while self.queued >= self.queue_size and not self.closing:
                    self.room.wait(0.1)
                    if not self.closing:  # paho's thread waits here: feed the broker's timer
                        self.client.keep_alive()
        entry = (self.generation, time_ns() // 1000, mids, qoss, topics, payloads)
        with self.inbox_lock:
            self.inbox.append(entry)
            self.queued += len(mids)

    # --- worker thread --------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(**connect_args(self.settings, persistent=True))
        self.client.loop_start()

    def drain(self, limit: int) -> Drained:
        """Up to `limit` messages, oldest first (a read's entry is split at the limit)."""
        gens: list[int] = []
        mids: list[int] = []
        qoss: list[int] = []
        topics: list[str] = []
        messages: list[tuple[int, bytes]] = []
        inbox = self.inbox
        taken = 0
        with self.inbox_lock:
            while inbox and taken < limit:
                gen, ts, m, q, t, p = inbox.popleft()
                room = limit - taken
                if len(m) > room:  # the rest stays first in line
                    inbox.appendleft((gen, ts, m[room:], q[room:], t[room:], p[room:]))
                    m, q, t, p = m[:room], q[:room], t[:room], p[:room]
                gens += [gen] * len(m)
                mids += m
                qoss += q
                topics += t
                messages += zip(repeat(ts, len(p)), p, strict=True)
                taken += len(m)
            self.queued -= taken
        if taken:
            self.room.set()
        return Drained(gens, mids, qoss, topics, messages)

    def take_gaps(self) -> list[Gap]:
        if not self.gaps:
            return []
        with self.lock:
            gaps, self.gaps = self.gaps, []
        return gaps

    def ack(self, pending: list[Sent], hook: AckHook | None = None) -> int:
        """Acknowledge messages of the current connection only; returns how many.

        Per batch, not per message: a batch that arrived on the current connection with
        QoS 1 throughout (the usual case) gives its message ids as they are; only a batch
        spanning a reconnect or holding QoS 0/2 messages is looked at message by message."""
        with self.lock:
            if not self.connected:
                return 0
            gen = self.generation
            mids: list[int] = []
            positions: list[int] = []
            qos2: list[int] = []
            for sent in pending:
                n = len(sent.mids)
                if sent.gens[0] == sent.gens[-1] == gen and sent.qoss.count(1) == n:
                    mids.extend(sent.mids)
                    positions.extend(range(sent.first_pos, sent.first_pos + n))
                    continue
                for k, (g, mid, qos) in enumerate(zip(sent.gens, sent.mids, sent.qoss,
                                                      strict=True)):
                    if g == gen and qos:
                        (mids if qos == 1 else qos2).append(mid)
                        positions.append(sent.first_pos + k)
            if hook is not None:
                hook(self.client_id, positions)
            self.client.ack_many(mids)
            ack = self.client.ack
            for mid in qos2:
                ack(mid, 2)
        return len(positions)

    def stop(self) -> None:
        self.closing = True
        self.room.set()
        if self.waiting.acquire(timeout=5):  # the network thread left its wait
            self.waiting.release()
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            CONNECTIONS.set(self.feed, self.client_id, None)


class MqttPartition(StatefulSourcePartition[MessageBatch, int]):
    def __init__(
        self,
        feed: FeedSettings,
        key: str,
        resume_pos: int | None,
        ack_hook: AckHook | None = None,
    ) -> None:
        assert feed.mqtt is not None
        self.feed = feed.name
        self.key = key
        self.batch_max = feed.mqtt.batch_max
        self.pos = max(resume_pos or 0, now_us())
        self.ack_hook = ack_hook
        # ack handles of the batches emitted in the epoch now open / in the previous epoch
        self.current: list[Sent] = []
        self.previous: list[Sent] = []
        self.full = False
        self.small = True
        self.sub = Subscriber(feed.name, feed.mqtt, key, int(key.rsplit("-", 1)[1]))
        self.sub.start()

    def next_batch(self) -> list[MessageBatch]:
        got = self.sub.drain(self.batch_max)
        n = len(got.mids)
        self.full = n == self.batch_max
        self.small = n < SMALL_BATCH
        gaps = self.sub.take_gaps()
        if not n and not gaps:
            return []
        first = self.pos
        self.pos += n
        if not n:
            return [MessageBatch(self.feed, "mqtt", self.key, first, [], gaps, [])]
        self.current.append(Sent(first, got.gens, got.mids, got.qoss))
        return [MessageBatch(self.feed, "mqtt", self.key, first, got.messages, gaps, got.topics)]

    def next_awake(self) -> datetime | None:
        # A full batch: more is waiting, come back now. Otherwise poll shortly, or a
        # little later while batches are small (low load: larger batches, same latency goal).
        if self.full:
            return None
        return datetime.now(UTC) + (POLL_SMALL if self.small else POLL)

    def snapshot(self) -> int:
        # Epoch E closes: epochs < E are committed (see module doc), so ack `previous`.
        if self.previous:
            self.sub.ack(self.previous, self.ack_hook)
        self.previous = self.current
        self.current = []
        return self.pos

    def close(self) -> None:
        # Nothing is acked here: the last epochs' messages are redelivered on restart.
        self.sub.stop()


class MqttSource(FixedPartitionedSource[MessageBatch, int]):
    """`feed.mqtt.clients` subscriber partitions behind one shared subscription (or static
    slices of the topic filters; see `dataflows.sources.mqtt_client.subscriptions`)."""

    def __init__(self, feed: FeedSettings, settings=None, ack_hook: AckHook | None = None):
        if feed.mqtt is None:
            raise ValueError(f"feed {feed.name} is not an MQTT feed")
        self.feed = feed
        self.settings = settings
        self.ack_hook = ack_hook
        if settings is not None and not getattr(settings, "recovery", True):
            log.warning("%s: recovery is off; acks then follow epochs, not proven commits",
                        feed.name)

    def list_parts(self) -> list[str]:
        mq = self.feed.mqtt
        return [f"{mq.client_id}-{i}" for i in range(mq.clients)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> MqttPartition:
        return MqttPartition(self.feed, for_part, resume_state, self.ack_hook)
