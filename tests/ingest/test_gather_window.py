"""An MQTT feed's gather window (dataflows/sink/gather.py): mqtt.flush_ms up to
flush_grow_from readings/s, then growing with the rate up to flush_max_ms."""

from __future__ import annotations

import pytest

from dataflows.sink.gather import GatherWindow
from feedhouse.core.settings import MqttSettings


def stream(window: GatherWindow, rate: float, seconds: float, t0: float = 100.0) -> float:
    """Hand over `rate` rows/s in the window's own rhythm for `seconds`; the end time."""
    t, owed = t0, 0.0
    while t < t0 + seconds:
        owed += rate * window.seconds
        t += window.seconds
        window.handed_over(int(owed), t)
        owed -= int(owed)
    return t


@pytest.mark.parametrize(("rate", "expected_ms"), [
    (1_000, 50), (10_000, 50), (20_000, 100), (30_000, 150), (90_000, 150)])
def test_the_window_is_flush_ms_up_to_grow_from_then_grows_with_the_rate_to_the_cap(
        rate, expected_ms):
    window = GatherWindow(0.05, 0.15, 10_000)
    stream(window, rate, 5.0)
    assert window.seconds * 1000 == pytest.approx(expected_ms, rel=0.03)


def test_a_stalls_backlog_does_not_stretch_the_window():
    """10k rows/s; now and then the worker stands still 600 ms, then reads its backlog
    at 50k rows/s over a few windows: those carry 5x the rows, but the rate over the span
    stays near 10k/s, so the window stays near flush_ms (a stretched one would add to
    the worst latencies, where the stall put them)."""
    window = GatherWindow(0.05, 0.15, 10_000)
    t, seen = 100.0, []
    for i in range(8):
        t = stream(window, 10_000, 0.4 + 0.15 * (i % 4), t0=t)
        t += 0.6  # stall: 6,000 rows wait
        backlog = 6000.0
        while backlog > 0:  # 50 ms windows of 2,500 rows, 500 of them new
            t += 0.05
            window.handed_over(2500, t)
            backlog -= 2000
            seen.append(window.seconds)
    assert max(seen) <= 0.05 * 1.5


def test_a_busy_feed_going_quiet_falls_back_to_flush_ms_at_its_next_hand_over():
    window = GatherWindow(0.05, 0.15, 10_000)
    t = stream(window, 30_000, 3.0)
    assert window.seconds == pytest.approx(0.15)
    window.handed_over(1, t + 5.0)  # one reading after 5 quiet seconds
    assert window.seconds == 0.05


def test_no_growth_when_the_cap_is_not_above_flush_ms():
    window = GatherWindow(0.25, 0.15, 10_000)  # flush_ms raised above the default cap
    stream(window, 50_000, 3.0)
    assert window.seconds == 0.25


def test_the_window_comes_from_the_feeds_mqtt_settings():
    window = GatherWindow.of(MqttSettings(flush_ms=40, flush_max_ms=200, flush_grow_from=5000))
    assert (window.base_s, window.max_s, window.grow_from, window.seconds) == (0.04, 0.2, 5000, 0.04)
    defaults = GatherWindow.of(MqttSettings())
    assert (defaults.base_s, defaults.max_s, defaults.grow_from) == (0.05, 0.15, 10_000)
