"""A two-process Bytewax cluster probe (run as `python -m tests.support.cluster_probe
LOG RECOVERY_DIR INDEX ADDR0,ADDR1`): source partitions in both processes, one sink
partition in process 0 whose snapshot is slow. Every snapshot call is logged as
`time pid kind part n` so a test can check the order MQTT acks rely on: a source's
snapshot n comes only after the sink's snapshot n-1 returned, whatever the process."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from bytewax.recovery import RecoveryConfig
from bytewax.testing import cluster_main

from dataflows.cluster import Cluster

ITEMS = 30


def log(path: str, *fields) -> None:
    with open(path, "a") as f:
        f.write(" ".join(map(str, (time.time(), os.getpid(), *fields))) + "\n")


class _SourcePart(StatefulSourcePartition):
    def __init__(self, path: str, key: str) -> None:
        self.path, self.key, self.n, self.snaps = path, key, 0, 0

    def next_batch(self):
        self.n += 1
        if self.n > ITEMS:
            raise StopIteration
        time.sleep(0.02)
        return [(self.key, self.n)]

    def snapshot(self):
        self.snaps += 1
        log(self.path, "source", self.key, self.snaps)
        return self.n


class _Source(FixedPartitionedSource):
    def __init__(self, path: str, cluster: Cluster) -> None:
        self.path, self.cluster = path, cluster

    def list_parts(self):
        return self.cluster.mine(["a", "b"])

    def build_part(self, step_id, for_part, resume_state):
        return _SourcePart(self.path, for_part)


class _SinkPart(StatefulSinkPartition):
    def __init__(self, path: str) -> None:
        self.path, self.snaps = path, 0

    def write_batch(self, items) -> None:
        log(self.path, "write", len(items), 0)

    def snapshot(self):
        self.snaps += 1
        time.sleep(0.3)  # an insert that takes a while
        log(self.path, "sink", "store", self.snaps)


class _Sink(FixedPartitionedSink):
    def __init__(self, path: str, cluster: Cluster) -> None:
        self.path, self.cluster = path, cluster

    def list_parts(self):
        return ["store"] if self.cluster.writes_store else []

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id, for_part, resume_state):
        return _SinkPart(self.path)


def main() -> None:
    path, recovery, index, addresses = sys.argv[1:5]
    cluster = Cluster(int(index), tuple(addresses.split(",")))
    flow = Dataflow("probe")
    items = op.input("in", flow, _Source(path, cluster))
    op.output("out", op.map("key", items, lambda x: ("store", x)), _Sink(path, cluster))
    cluster_main(flow, list(cluster.addresses), cluster.index,
                 epoch_interval=timedelta(seconds=0.1), recovery_config=RecoveryConfig(recovery))


if __name__ == "__main__":
    main()
