"""Reconciliation of buffer replays: the `ops/reconciliation` asset (runs feedhouse.verify.reconcile).

A failed reconciliation is loud: the check `replay_reconciles` fails with the minutes that
disagree, and the run itself fails (after recording the row and the check).
"""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from feedhouse.verify.reconcile import SETTLE_S, reconcile
from orchestration.assets.tables import TABLE_KEYS
from orchestration.keys import AUDIT_KEY, OWNERS, RECON_KEY
from orchestration.resources.buffer import BufferResource
from orchestration.resources.settings import SettingsResource
from orchestration.resources.warehouse import WarehouseResource

CHECK_NAME = "replay_reconciles"


class ReconcileConfig(Config):
    replay_id: str = ""  # empty: every finished replay not reconciled yet
    settle_s: float = SETTLE_S  # skip replays that finished less than this many seconds ago


def _minutes(values) -> list[str]:
    return [m.strftime("%Y-%m-%d %H:%M") for m in values]


@asset(
    key=RECON_KEY,
    group_name="ops",
    owners=OWNERS,
    kinds={"clickhouse"},
    deps=[AUDIT_KEY, TABLE_KEYS["ops.replay_log"]],
    description="One row per buffer replay: buffered rows = replayed rows = new rows in the "
    "table (net of duplicates), and the ledger agrees minute by minute; failures name the "
    "minutes that disagree.",
    check_specs=[AssetCheckSpec(CHECK_NAME, asset=RECON_KEY,
                                description="the reconciled replays all came out ok")],
)
def reconciliation(
    context: AssetExecutionContext,
    config: ReconcileConfig,
    warehouse: WarehouseResource,
    settings: SettingsResource,
    buffer: BufferResource,
):
    with warehouse.open() as client:
        results = reconcile(client, replay_id=config.replay_id or None, kinds=settings.feed_kinds(),
                            settle_s=config.settle_s)
    failed = [r for r in results if not r.ok]
    rows = [
        {"replay_id": r.replay_id, "feed": r.feed, "status": r.status, "buffered": r.buffered_rows,
         "replayed": r.replayed_rows, "new_rows": r.table_rows, "explanation": r.explanation,
         "bad_minutes": _minutes(r.bad_minutes)}
        for r in results
    ]
    backlog = buffer.backlog()
    yield MaterializeResult(
        metadata={
            "replays": len(results),
            "failed": len(failed),
            "results": MetadataValue.json(rows),
            "buffer_rows_waiting": MetadataValue.text(
                f"{backlog['rows']} rows in {backlog['batches']} batches ({backlog['state']})"
            ),
        },
        check_results=[
            AssetCheckResult(
                check_name=CHECK_NAME,
                passed=not failed,
                severity=AssetCheckSeverity.ERROR,
                metadata={"failed_replays": MetadataValue.json(
                    [{"replay_id": r.replay_id, "bad_minutes": _minutes(r.bad_minutes),
                      "explanation": r.explanation} for r in failed])},
            )
        ],
    )
    if failed:
        first = failed[0]
        raise Failure(
            description=f"{len(failed)} replay(s) do not reconcile; {first.replay_id} ({first.feed}): "
            f"{first.explanation}",
            metadata={"bad_minutes": MetadataValue.json(_minutes(first.bad_minutes))},
        )
    context.log.info(f"{len(results)} replay(s) reconciled ok")


ASSETS = [reconciliation]
