"""Prometheus metrics of `feedhouse run`: counters, gauges and latency histograms per feed.

The hot path calls this once per micro-batch, so it keeps plain numbers under one lock
and builds the Prometheus families only when scraped (a custom collector), instead of
one prometheus_client child call per record:

    from dataflows import metrics
    metrics.count(feed, "inserted", len(rows))
    metrics.observe_us("parsed_to_insert_acked", feed, [r.parsed_us for r in rows], ack_us)
    metrics.event_time(feed, newest_exchange_ts_us)     # consumer lag = now - this
    port = metrics.start_metrics_server(settings.metrics_port)

Consumer lag is computed at scrape time (now - newest event time seen per feed), so it
keeps growing when a feed stalls and `feedhouse_consumer_lag_seconds > 5` can alert.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

# counter name -> (metric family, help); the family is exposed with a `_total` suffix
COUNTERS = {
    "received": ("feedhouse_received_messages", "messages (frames) received from the source"),
    "records": ("feedhouse_records", "records parsed from received messages"),
    "invalid": ("feedhouse_invalid_messages", "messages that failed to parse (dead-lettered)"),
    "duplicates": ("feedhouse_duplicates", "records dropped by the dedup window"),
    "inserted": ("feedhouse_inserted_rows", "rows inserted into ClickHouse directly"),
    "buffered": ("feedhouse_buffered_rows", "rows written to the local buffer (outage)"),
    "replayed": ("feedhouse_replayed_rows", "rows replayed from the local buffer"),
    "reconnects": ("feedhouse_reconnects", "source reconnections"),
    "book_snapshots": ("feedhouse_book_snapshots",
                       "REST depth snapshots fetched for the books (Binance)"),
    "book_snapshot_failures": ("feedhouse_book_snapshot_failures",
                               "REST depth snapshots that could not be fetched (book unsynced)"),
    "source_paused_us": ("feedhouse_source_paused_microseconds",
                         "time the source stopped reading: the dataflow was behind (backpressure)"),
}
# hops of one event, as in the latency budget: each observed in seconds
HOPS = ("exchange_to_receive", "receive_to_parsed", "parsed_to_insert_acked", "end_to_end")
# 0.1 ms .. 10 s, roughly 1-2.5-5 per decade
BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
_BOUNDS = np.asarray(BUCKETS)
_LE = [repr(b) for b in BUCKETS] + ["+Inf"]


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = np.zeros(len(BUCKETS) + 1, dtype=np.int64)  # per bucket, +Inf last
        self.total = 0.0


class PipelineMetrics(Collector):
    """Every metric of one ingest process, exposed through its own registry."""

    def __init__(self, process: bool = True) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], int] = {}
        self._hists: dict[tuple[str, str], _Histogram] = {}
        self._newest_s: dict[str, float] = {}
        self._connected: dict[str, int] = {}
        self._buffer_rows: dict[str, int] = {}
        self._dedup_keys: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)
        if process:  # RSS, CPU, open fds of this process
            ProcessCollector(registry=self.registry)

    # --- hot path ----------------------------------------------------------------------

    def count(self, feed: str, name: str, n: int = 1) -> None:
        """Add n to a per-feed counter (one of COUNTERS)."""
        if name not in COUNTERS:
            raise KeyError(f"unknown counter {name!r} (known: {', '.join(COUNTERS)})")
        key = (feed, name)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + n

    def observe_many(self, hop: str, feed: str, seconds: Iterable[float] | np.ndarray) -> None:
        """Record many latencies (seconds) of one hop at once. Negative values (clock skew
        between exchange and us) count as 0 so the histogram's sum never decreases."""
        if hop not in HOPS:
            raise KeyError(f"unknown hop {hop!r} (known: {', '.join(HOPS)})")
        values = np.maximum(np.asarray(seconds, dtype=np.float64), 0.0)
        if values.size == 0:
            return
        counts = np.bincount(np.searchsorted(_BOUNDS, values), minlength=len(BUCKETS) + 1)
        total = float(values.sum())
        key = (hop, feed)
        with self._lock:
            hist = self._hists.get(key)
            if hist is None:
                hist = self._hists[key] = _Histogram()
            hist.counts += counts
            hist.total += total

    def observe_us(
        self, hop: str, feed: str, start_us: Sequence[int] | np.ndarray, end_us: int | Sequence[int]
    ) -> None:
        """Latencies from µs timestamps (records carry µs): end - start, per record."""
        start = np.asarray(start_us, dtype=np.int64)
        end = np.asarray(end_us, dtype=np.int64)
        self.observe_many(hop, feed, (end - start) / 1e6)

    def event_time(self, feed: str, newest_us: int) -> None:
        """The newest event (exchange/device) time seen for a feed, for the lag gauge."""
        newest = newest_us / 1e6
        with self._lock:
            if newest > self._newest_s.get(feed, 0.0):
                self._newest_s[feed] = newest

    def counter(self, name: str) -> dict[str, int]:
        """One counter's value per feed."""
        with self._lock:
            return {feed: v for (feed, counter), v in self._counters.items() if counter == name}

    # --- state gauges ------------------------------------------------------------------

    def set_connected(self, feed: str, connected: bool) -> None:
        with self._lock:
            self._connected[feed] = int(connected)

    def set_buffer_rows(self, rows: int, feed: str = "all") -> None:
        with self._lock:
            self._buffer_rows[feed] = rows

    def set_dedup_keys(self, feed: str, keys: int) -> None:
        with self._lock:
            self._dedup_keys[feed] = keys

    def dedup_bytes(self) -> dict[str, int]:
        """Bytes the dedup windows' keys take per feed (16 a key: hash + event time)."""
        with self._lock:
            return {feed: keys * 16 for feed, keys in self._dedup_keys.items()}

    # --- scrape ------------------------------------------------------------------------

    def collect(self):
        with self._lock:
            counters = dict(self._counters)
            hists = {k: (h.counts.copy(), h.total) for k, h in self._hists.items()}
            newest = dict(self._newest_s)
            gauges = (
                ("feedhouse_feed_connected", "1 while the feed's source is connected",
                 dict(self._connected)),
                ("feedhouse_buffer_rows", "rows waiting in the local buffer",
                 dict(self._buffer_rows)),
                ("feedhouse_dedup_keys", "keys held by the dedup window", dict(self._dedup_keys)),
            )
        for name, (family, help_text) in COUNTERS.items():
            metric = CounterMetricFamily(family, help_text, labels=["feed"])
            for (feed, counter), value in sorted(counters.items()):
                if counter == name:
                    metric.add_metric([feed], value)
            yield metric
        for family, help_text, values in gauges:
            metric = GaugeMetricFamily(family, help_text, labels=["feed"])
            for feed, value in sorted(values.items()):
                metric.add_metric([feed], value)
            yield metric
        now = time.time()
        lag = GaugeMetricFamily(
            "feedhouse_consumer_lag_seconds",
            "now minus the newest event time seen (alert when > 5)",
            labels=["feed"],
        )
        newest_family = GaugeMetricFamily(
            "feedhouse_newest_event_timestamp_seconds",
            "newest event time seen, unix seconds",
            labels=["feed"],
        )
        for feed, ts in sorted(newest.items()):
            lag.add_metric([feed], max(now - ts, 0.0))
            newest_family.add_metric([feed], ts)
        yield lag
        yield newest_family
        latency = HistogramMetricFamily(
            "feedhouse_latency_seconds",
            "latency per hop: exchange_to_receive, receive_to_parsed, "
            "parsed_to_insert_acked, end_to_end",
            labels=["hop", "feed"],
        )
        for (hop, feed), (counts, total) in sorted(hists.items()):
            cumulative = np.cumsum(counts).tolist()
            latency.add_metric([hop, feed], list(zip(_LE, cumulative, strict=True)), total)
        yield latency


METRICS = PipelineMetrics()
# The process-wide instance's methods, so callers write `metrics.count(...)`.
count = METRICS.count
counter = METRICS.counter
observe_many = METRICS.observe_many
observe_us = METRICS.observe_us
event_time = METRICS.event_time
set_connected = METRICS.set_connected
set_buffer_rows = METRICS.set_buffer_rows
set_dedup_keys = METRICS.set_dedup_keys
dedup_bytes = METRICS.dedup_bytes

_servers: dict[int, object] = {}


def start_metrics_server(
    port: int, host: str = "127.0.0.1", metrics: PipelineMetrics | None = None
) -> int:
    """Serve /metrics over HTTP in a daemon thread; returns the port (0 picks a free one)."""
    server, _thread = start_http_server(port, addr=host, registry=(metrics or METRICS).registry)
    actual = server.server_port
    _servers[actual] = server
    return actual


def stop_metrics_server(port: int) -> None:
    server = _servers.pop(port, None)
    if server is not None:
        server.shutdown()
        server.server_close()
