"""`BrokerStats.wait_drained`: a backlog is waited for while it shrinks, a stalled one
gives up (the drill's drain after a load generator that outran the pipeline)."""

from __future__ import annotations

import pytest

from feedhouse.app.drills.mqtt import count_rows_apart, write_config
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


def test_a_backlog_stuck_from_the_start_gives_up_after_one_stall():
    # e.g. a count Mosquitto 2.0.11 keeps after a restart: one stall_s, not two
    stats = ScriptedStats([2, 2, 2, 2])
    assert not stats.wait_drained(stall_s=1)
    assert stats.reads == 3  # the baseline, the one wait, the reading after it


def test_the_drills_row_count_is_zero_on_a_store_no_ingest_initialized_yet(tmp_path):
    # drill mqtt --kill-ingest under load: the first ingest may die before it applies the
    # schema (its subscribers came first); that store holds no reading, not an error
    config = write_config(tmp_path, 1883, "3.1.1", 2, False, 1)
    assert count_rows_apart(config) == 0
