"""The ClickHouse warehouse as a Dagster resource: `with warehouse.open() as client:`."""


from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource

from feedhouse.core.settings import Settings
from feedhouse.store.client import warehouse
from orchestration.resources.settings import SettingsResource


class WarehouseResource(ConfigurableResource):
    """Opens feedhouse's warehouse (feedhouse.store.client.warehouse) per use.

    An embedded chDB store is shared with the ingest and the CLI under a file lock, so keep
    each `open()` block short; sensors pass a short `lock_timeout_s` and skip when busy.
    `dsn` overrides the settings' warehouse_dsn (production passes it as an EnvVar).
    """

    settings: SettingsResource
    dsn: str | None = None
    lock_timeout_s: float | None = None

    def load_settings(self) -> Settings:
        return self.settings.load(**({"warehouse_dsn": self.dsn} if self.dsn else {}))

    @contextmanager
    def open(self, lock_timeout_s: float | None = None) -> Iterator:
        with warehouse(self.load_settings(), lock_timeout_s=lock_timeout_s or self.lock_timeout_s) as client:
            yield client

    @contextmanager
    def open_for_backfill(self) -> Iterator:
        """The warehouse as the backfill user (settings' backfill_dsn; else as `open`)."""
        settings = self.load_settings().for_backfill()
        with warehouse(settings, lock_timeout_s=self.lock_timeout_s) as client:
            yield client
