"""The MQTT drill's row count between ingest processes (`count_rows_apart`)."""

from __future__ import annotations

import pytest

from feedhouse.app.drills.mqtt import count_rows_apart, write_config

pytestmark = pytest.mark.integration  # starts a `feedhouse sql` process


def test_the_drills_row_count_is_zero_on_a_store_no_ingest_initialized_yet(tmp_path):
    # drill mqtt --kill-ingest under load: the first ingest may die before it applies the
    # schema (its subscribers came first); that store holds no reading, not an error
    config = write_config(tmp_path, 1883, "3.1.1", 2, False, 1)
    assert count_rows_apart(config) == 0
