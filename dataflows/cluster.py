"""A `feedhouse run` over several processes (`feedhouse run --processes N`): one Bytewax
cluster on loopback whose store-writing sink lives in process 0.

Why: one ingest process takes all its paho threads, parsing and the dataflow under one GIL.
With N processes, each MQTT subscriber partition (`feed.mqtt.clients`) runs in process
`i % N`, behind the same shared subscription, so paho and parsing spread over processes;
the parsed batches cross to the worker of their feed's dedup window, then to the
sink partitions, which only process 0 lists. So one process alone opens the embedded
store (chDB admits one), and the other processes never touch it (no schema, no footprint
probe, no metrics server).

Acknowledgements stay where the MQTT session is, and stay after the commit: Bytewax
calls a source partition's `snapshot()` for epoch E only after epoch E-1 is committed
by every worker of the cluster, the sink's `snapshot()` (insert or buffer) included
(measured with a 2-process cluster whose sink snapshot sleeps 0.4 s: every source
snapshot E, in either process, came after the sink's snapshot E-1 returned). The MQTT
partition acks at `snapshot()` E only what it emitted before epoch E-1 closed.

Lifetime: the worker processes are children of process 0 and die with it (Linux
PR_SET_PDEATHSIG), so a SIGKILLed ingest leaves no subscriber holding messages unacked
on a session; a stop (SIGTERM) is passed on to them, and process 0 waits for them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

log = logging.getLogger("feedhouse.cluster")
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Cluster:
    """This process's place in a `feedhouse run` cluster."""

    index: int
    addresses: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.addresses)

    @property
    def writes_store(self) -> bool:
        return self.index == 0

    def mine(self, parts: Sequence[str]) -> list[str]:
        """The partitions (of a list every process builds alike) this process holds."""
        return [p for i, p in enumerate(parts) if i % self.count == self.index]


def free_addresses(n: int) -> tuple[str, ...]:
    """n loopback host:port pairs free right now (the cluster binds them at once)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return tuple(f"127.0.0.1:{s.getsockname()[1]}" for s in socks)
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Workers:
    """The worker processes (1..N-1) process 0 started."""

    procs: list[subprocess.Popen] = field(default_factory=list)
    stopped: set[int] = field(default_factory=set)  # pids a stop was passed on to

    @classmethod
    def spawn(cls, command: Sequence[str], cluster: Cluster) -> Workers:
        """`command` + `--cluster-index i` for every i > 0 (the same settings and feeds)."""
        procs = []
        for i in range(1, cluster.count):
            procs.append(subprocess.Popen(
                [*command, "--cluster-index", str(i), "--cluster-addresses",
                 ",".join(cluster.addresses)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                preexec_fn=_die_with_parent))
        log.info("cluster of %d processes: workers %s", cluster.count,
                 ", ".join(str(p.pid) for p in procs))
        return cls(procs)

    def stop(self) -> None:
        """Pass a stop on (their partitions end, the cluster's dataflow completes), once:
        a second SIGTERM could reach a worker after its run restored the default handler,
        killing it before it wrote its stopped status."""
        for proc in self.procs:
            if proc.pid not in self.stopped and proc.poll() is None:
                self.stopped.add(proc.pid)
                os.kill(proc.pid, signal.SIGTERM)

    def wait(self, timeout_s: float = 60) -> list[int | None]:
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout_s))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        return codes
