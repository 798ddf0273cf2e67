"""Fixtures of the sink tests."""

from __future__ import annotations

import pytest

from feedhouse.core.config import load_settings
from feedhouse.store.migrations import init_schema


@pytest.fixture
def sink_settings(tmp_path):
    """A fresh store whose sink buffers after 50 ms of errors, with a fault file to switch."""
    s = load_settings(
        home=str(tmp_path),
        recovery=False,
        fault_file=str(tmp_path / "faults.json"),
        sink={"retry_initial_s": 0.01, "retry_max_s": 0.02, "buffer_after_s": 0.05},
    )
    init_schema(s)
    return s
