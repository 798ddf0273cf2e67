"""`BrokerStats.wait_drained`: a backlog is waited for while it shrinks, a stalled one
gives up (the drill's drain after a load generator that outran the pipeline)."""

from __future__ import annotations

import pytest

from feedhouse.app.mqtt.broker import BrokerStats

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


class ScriptedStats(BrokerStats):
    """`held` readings from a script, one per `read`; `wait` checks the next one."""

    def __init__(self, held: list[int]) -> None:
        super().__init__(port=1)
        self.held = list(held)
        self.reads = 0

    def read(self, timeout: float = 3.0) -> dict[str, int]:
        self.reads += 1
        value = self.held.pop(0) if len(self.held) > 1 else self.held[0]
        return {"held": value}

    def wait(self, name, ok, timeout, settle_s=2.5) -> bool:
        return ok(self.read()[name])


def test_a_shrinking_backlog_is_waited_for_until_empty():
    stats = ScriptedStats([900, 800, 500, 400, 100, 50, 0])
    assert stats.wait_drained(stall_s=1)


def test_a_backlog_that_stops_shrinking_gives_up():
    stats = ScriptedStats([900, 800, 700, 700, 700, 700])
    assert not stats.wait_drained(stall_s=1)
    assert stats.reads < 10
