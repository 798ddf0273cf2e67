"""Sensors: one reconciliation run per finished buffer replay (run key = replay id)."""


from dagster import (
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from feedhouse.core.errors import WarehouseBusy, WarehouseUnavailable
from feedhouse.verify.reconcile import finished_replays
from orchestration.assets.reconcile import ReconcileConfig
from orchestration.automation import SENSOR_STATUS
from orchestration.jobs import reconcile_job
from orchestration.resources.warehouse import WarehouseResource

SENSOR_LOCK_TIMEOUT_S = 1.0  # a sensor tick must not queue behind the ingest: skip instead


@sensor(
    job=reconcile_job,
    minimum_interval_seconds=30,
    default_status=SENSOR_STATUS,
    description="Requests one reconcile_replays run per finished replay in ops.replay_log "
    "that has no reconciliation yet.",
)
def replay_log_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    try:
        with warehouse.open(lock_timeout_s=SENSOR_LOCK_TIMEOUT_S) as client:
            replays = finished_replays(client)
    except (WarehouseBusy, WarehouseUnavailable) as exc:
        return SkipReason(f"warehouse not available now: {exc}")
    if not replays:
        return SkipReason("no finished replay waiting for reconciliation")
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=replay_id,
                run_config=RunConfig(ops={"ops__reconciliation": ReconcileConfig(replay_id=replay_id)}),
                tags={"feedhouse/replay_id": replay_id, "feedhouse/feed": rows[0].feed},
            )
            for replay_id, rows in replays.items()
        ]
    )


SENSORS = [replay_log_sensor]
