"""The ingest dataflow: sources -> parse -> dedup (keyed by feed) -> ClickHouse sink.

Exchange feeds come from `ExchangeSource` (one partition per feed), MQTT feeds from one
`MqttSource` per feed; both emit `MessageBatch` items. Parsing picks the feed's parser:
the venue adapter for exchange feeds, `dataflows.parse.readings.reading_parser` for MQTT.
Every source is wrapped in `StoppableSource` so `feedhouse run` can stop cleanly on a
signal: the partitions end, the sink flushes and closes, recovery keeps the last epoch.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, Source, StatefulSourcePartition

from dataflows.books.live import book_feeds
from dataflows.cluster import Cluster
from dataflows.dedup.stage import DedupLogic
from dataflows.frames import MessageBatch
from dataflows.parse.readings import reading_parser
from dataflows.parse.stage import ParsedBatch, ParseOne, parse_batch
from dataflows.sink.stage import ClickHouseSink
from dataflows.sources.exchange import ExchangeSource
from dataflows.sources.mqtt import MqttSource
from feedhouse.core.errors import SettingsError
from feedhouse.core.settings import FeedSettings, Settings

STOP_POLL = timedelta(milliseconds=100)


class _StoppablePart(StatefulSourcePartition):
    def __init__(self, inner: StatefulSourcePartition, stop: threading.Event) -> None:
        self.inner = inner
        self.stop = stop

    def next_batch(self):
        if self.stop.is_set():
            raise StopIteration
        return self.inner.next_batch()

    def next_awake(self):
        awake = self.inner.next_awake()
        if awake is None:
            return None
        return min(awake, datetime.now(UTC) + STOP_POLL)

    def snapshot(self):
        return self.inner.snapshot()

    def close(self) -> None:
        self.inner.close()


class StoppableSource(FixedPartitionedSource):
    """A FixedPartitionedSource whose partitions end once `stop` is set. In a cluster
    (dataflows/cluster.py) it lists only this process's share of the partitions."""

    def __init__(self, inner: FixedPartitionedSource, stop: threading.Event,
                 cluster: Cluster | None = None) -> None:
        self.inner = inner
        self.stop = stop
        self.cluster = cluster

    def list_parts(self):
        parts = self.inner.list_parts()
        return parts if self.cluster is None else self.cluster.mine(parts)

    def build_part(self, step_id, for_part, resume_state):
        return _StoppablePart(self.inner.build_part(step_id, for_part, resume_state), self.stop)


def parser_for(feed: FeedSettings) -> ParseOne | None:
    """MQTT feeds: the feed's reading parser; exchange feeds: None (the venue's
    batch parser, chosen by the batch's venue)."""
    if feed.kind == "mqtt":

        return reading_parser(feed)
    return None


def _sources(feeds: list[FeedSettings], settings: Settings) -> list[tuple[str, Source]]:
    found: list[tuple[str, Source]] = []
    exchange = [f for f in feeds if f.kind == "exchange"]
    if exchange:

        found.append(("exchange_in", ExchangeSource(exchange, settings)))
    for feed in feeds:
        if feed.kind == "mqtt":

            found.append((f"mqtt_in_{feed.name}", MqttSource(feed, settings)))
    return found


def build_flow(
    settings: Settings,
    feeds: list[FeedSettings] | None = None,
    *,
    stop: threading.Event | None = None,
    sources: list[tuple[str, Source]] | None = None,
    cluster: Cluster | None = None,
) -> Dataflow:
    """The dataflow for `feeds` (default: every configured feed).

    `sources` replaces the configured sources (tests: a TestingSource of MessageBatch).
    `cluster`: this process's place in a several-process run (its share of the source
    partitions; the sink partitions only in process 0).
    """
    feeds = list(settings.feeds if feeds is None else feeds)
    if not feeds:

        raise SettingsError("setting 'feeds': no feed configured, nothing to run")
    stop = stop or threading.Event()
    flow = Dataflow("feedhouse")
    streams = []
    for step_id, source in sources if sources is not None else _sources(feeds, settings):
        if isinstance(source, FixedPartitionedSource):
            source = StoppableSource(source, stop, cluster)
        streams.append(op.input(step_id, flow, source))
    merged = streams[0] if len(streams) == 1 else op.merge("all_in", *streams)
    parsers = {f.name: parser_for(f) for f in feeds}
    no_quotes = {f.name for f in feeds if f.kind == "exchange" and "quotes" not in f.channels}
    books = book_feeds(feeds)  # feed -> BookFeed, for feeds with the books channel

    def parse(batch: MessageBatch) -> ParsedBatch:
        return parse_batch(batch, parsers.get(batch.feed), batch.feed not in no_quotes,
                           books.get(batch.feed))

    parsed = op.map("parse", merged, parse)
    keyed = op.key_on("by_feed", parsed, lambda p: p.feed)
    by_name = {f.name: f for f in feeds}
    tick_s = settings.sink.batch_ms / 1000.0
    idle_s = min(1.0, settings.sink.replay_probe_s)
    # large dedup levels are kept in files beside Bytewax's recovery store, not pickled
    # with every epoch's snapshot (dataflows/dedup/spill.py)
    spill_dir = Path(settings.recovery_dir or settings.home / "recovery") / "dedup" \
        if settings.recovery else None
    deduped = op.stateful_batch(
        "dedup", keyed, lambda resume: DedupLogic(by_name, resume, tick_s, idle_s, spill_dir)
    )
    mqtt = {f.name: f.mqtt for f in feeds if f.mqtt is not None}
    sink = ClickHouseSink(settings, [f.name for f in feeds], mqtt,
                          local=cluster is None or cluster.writes_store)
    op.output("clickhouse", deduped, sink)
    return flow
