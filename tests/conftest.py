"""Shared fixtures: a fresh embedded warehouse per test, settings pointing at it."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedhouse.core.config import load_settings
from feedhouse.core.settings import Settings
from feedhouse.store.migrations import init_schema


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "fh"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings for a fresh chDB store under tmp_path (no schema yet)."""
    return load_settings(home=str(home), reports_dir=str(home / "reports"))


@pytest.fixture
def initialized(settings: Settings) -> Settings:
    """Settings whose store has the feedhouse schema applied."""
    init_schema(settings)
    return settings


# Fixtures of the Dagster tests (tests/test_dagster_*.py): a seeded store seen through env.
from tests.support.dagster_seed import dagster_env, seeded  # noqa: E402, F401


def pytest_collection_modifyitems(items) -> None:
    """Run the in-process MQTT tests first.

    paho-mqtt's network loop uses select(), which cannot watch a descriptor numbered 1024
    or more; chDB keeps three /proc/thread-self files open per pool thread, and after a
    few hundred in-process tests the pytest process holds ~2,000 descriptors, so a paho
    client created late never sees its CONNACK. (`feedhouse run` processes stay far below
    that: their chDB pool holds a few dozen threads.)
    """
    items.sort(key=lambda item: 0 if item.fspath.basename.startswith("test_mqtt") else 1)
