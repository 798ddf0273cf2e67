"""The local DuckDB buffer as a Dagster resource: what is waiting to be replayed."""


from pathlib import Path

from dagster import ConfigurableResource

from dataflows.sink.buffer import LocalBuffer
from feedhouse.core.errors import FeedhouseError
from orchestration.resources.settings import SettingsResource


class BufferResource(ConfigurableResource):
    """Reads the buffer's backlog. DuckDB lets one process open the file: while the ingest
    holds it, `backlog()` says so instead of waiting."""

    settings: SettingsResource

    def path(self) -> Path:
        path = self.settings.load().buffer_path
        assert path is not None
        return path

    def backlog(self) -> dict[str, object]:
        """{'state': 'empty'|'pending'|'in use', 'batches': n, 'rows': n, 'path': str}."""
        path = self.path()
        info: dict[str, object] = {"path": str(path), "batches": 0, "rows": 0}
        if not path.exists():
            return {**info, "state": "empty"}

        try:
            with LocalBuffer(path) as buffer:
                info.update(batches=buffer.pending_batches, rows=buffer.pending_rows)
        except FeedhouseError:
            return {**info, "state": "in use"}
        return {**info, "state": "pending" if info["batches"] else "empty"}
