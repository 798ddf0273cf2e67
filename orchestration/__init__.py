"""Dagster definitions for feedhouse: `dagster dev -m orchestration.definitions`."""
