"""feedhouse settings as a Dagster resource (feedhouse.yaml + FEEDHOUSE_* env, loaded per use)."""


from typing import Any

from dagster import ConfigurableResource

from feedhouse.core.config import load_settings
from feedhouse.core.settings import Settings


class SettingsResource(ConfigurableResource):
    """Loads the same settings the `feedhouse` command uses, when a run or sensor needs them
    (not at import time: a bad setting fails the run with its one-line message)."""

    config_path: str | None = None

    def load(self, **overrides: Any) -> Settings:
        return load_settings(self.config_path, **overrides)

    def feed_kinds(self) -> dict[str, str]:
        """{feed: 'exchange'|'mqtt'} of the configured feeds."""
        return {feed.name: feed.kind for feed in self.load().feeds}
