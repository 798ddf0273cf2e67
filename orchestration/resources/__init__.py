"""Resources (and the executor) per environment, chosen in this one place.

* embedded — chDB store on this machine (`chdb:///dir`): one process may open the store at
  a time, so every job runs its steps in the run's own process (in_process_executor) and
  the warehouse waits up to 30 s for the store's lock.
* production — ClickHouse server (`http(s)://...`): steps may run in parallel processes;
  the DSN (with its password) is read from settings (FEEDHOUSE_WAREHOUSE_DSN) when a run
  starts, so it never appears in the definitions or the run config.

FEEDHOUSE_ENV=embedded|production picks one; otherwise the configured DSN's scheme does.
"""


import os

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from feedhouse.core.config import load_settings
from feedhouse.core.errors import SettingsError
from orchestration.resources.buffer import BufferResource
from orchestration.resources.settings import SettingsResource
from orchestration.resources.warehouse import WarehouseResource

ENVIRONMENTS = ("embedded", "production")


def current_environment() -> str:
    env = os.environ.get("FEEDHOUSE_ENV", "").strip().lower()
    if env:
        if env not in ENVIRONMENTS:
            raise SettingsError(f"setting 'FEEDHOUSE_ENV': must be one of {', '.join(ENVIRONMENTS)}")
        return env
    try:
        dsn = load_settings().dsn
    except SettingsError:
        return "embedded"  # runs will report the bad setting with its own message
    return "embedded" if dsn.startswith("chdb:") else "production"


def resources_for(env: str, config_path: str | None = None) -> dict[str, object]:
    """`config_path`: the feedhouse.yaml runs read (default: FEEDHOUSE_CONFIG, else the
    usual lookup); the demo passes its own so its runs see its store and feeds."""
    settings = SettingsResource(config_path=config_path or os.environ.get("FEEDHOUSE_CONFIG") or None)
    if env == "production":
        warehouse = WarehouseResource(settings=settings)
    else:
        warehouse = WarehouseResource(settings=settings, lock_timeout_s=30.0)
    return {"settings": settings, "warehouse": warehouse, "buffer": BufferResource(settings=settings)}


def executor_for(env: str) -> ExecutorDefinition:
    return multiprocess_executor if env == "production" else in_process_executor


ENV = current_environment()
RESOURCES = resources_for(ENV)
EXECUTOR = executor_for(ENV)
