"""Row-count audit: the `ops/row_count_audit` asset (runs feedhouse.verify.audit) and, on each data
table, the check `row_counts_match_ledger` that fails while any audited minute disagrees."""


import time

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset_check,
)

from feedhouse.verify.audit import DEFAULT_GRACE_S, AuditResult, open_mismatches, run_audit
from orchestration.assets.tables import QUOTES_KEY, READINGS_KEY, TABLE_KEYS, TRADES_KEY
from orchestration.keys import AUDIT_KEY, OWNERS
from orchestration.resources.settings import SettingsResource
from orchestration.resources.warehouse import WarehouseResource

CHECK_NAME = "row_counts_match_ledger"
CHECKED_TABLES = {TRADES_KEY: "market.trades", QUOTES_KEY: "market.quotes", READINGS_KEY: "iot.readings",
                  TABLE_KEYS["market.book_updates"]: "market.book_updates",
                  TABLE_KEYS["market.ohlcv_1m"]: "market.ohlcv_1m"}  # candles vs distinct trades
FIRST_N = 20


def _minute(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M")


def audit_markdown(result: AuditResult) -> str:
    lines = ["| feed | table | minutes | ok | missing | extra | ledger rows | table rows |",
             "|---|---|---|---|---|---|---|---|"]
    for s in result.by_feed():
        lines.append(f"| {s.feed} | {s.table_name} | {s.minutes} | {s.ok} | {s.missing} | "
                     f"{s.extra} | {s.ledger_rows} | {s.table_rows} |")
    return "\n".join(lines)


class AuditConfig(Config):
    full: bool = False  # re-audit closed minutes already audited ok (finds later losses)
    lookback_hours: float = 0.0  # with full: only minutes this recent (0 = all)
    grace_s: float = DEFAULT_GRACE_S  # minutes younger than this are still open
    # The ingest has stopped (the demo, a drill): every minute up to the newest event in
    # the ledger is closed, so it is audited now rather than after the grace period.
    ingest_stopped: bool = False


def newest_event_s(client) -> float:
    """Epoch seconds of the newest minute any feed counted in the ledger (0 when empty)."""
    return float(client.query(
        "SELECT toUnixTimestamp(max(minute)) FROM ops.ingest_ledger"
    ).result_rows[0][0] or 0)


@asset(
    key=AUDIT_KEY,
    group_name="ops",
    owners=OWNERS,
    kinds={"clickhouse"},
    deps=[TRADES_KEY, QUOTES_KEY, READINGS_KEY,
          *(TABLE_KEYS[t] for t in ("market.book_updates", "ops.ingest_ledger", "ops.dead_letter",
                                    "ops.replay_log"))],
    description="Row-count audit, one row per feed x event-time minute: the ledger's count of "
    "stored rows against the distinct keys in the table (status ok/missing/extra); and per "
    "venue/symbol x minute, the candle (built first when due) against the distinct trades "
    "(trades and volume; status ok/missing/extra/volume). Each run "
    "audits the closed minutes not yet audited, those not ok, and those a replay re-opened; "
    "the daily full audit re-checks the last day.",
)
def row_count_audit(
    context: AssetExecutionContext,
    config: AuditConfig,
    warehouse: WarehouseResource,
    settings: SettingsResource,
) -> MaterializeResult:
    kinds = settings.feed_kinds()
    since = time.time() - config.lookback_hours * 3600 if config.lookback_hours else None
    with warehouse.open() as client:
        now_s = None
        if config.ingest_stopped:
            now_s = max(time.time(), newest_event_s(client) + 60) + config.grace_s + 1
        result = run_audit(client, kinds=kinds, full=config.full, since_s=since,
                           grace_s=config.grace_s, now_s=now_s)
    bad = result.bad
    if bad:
        context.log.warning(
            f"{len(bad)} minute(s) disagree with the ledger, first: "
            + ", ".join(f"{m.feed} {_minute(m.minute)} {m.status} ({m.difference:+d})" for m in bad[:5])
        )
    return MaterializeResult(
        metadata={
            "minutes_audited": len(result.minutes),
            "ok": len(result.minutes) - len(bad),
            "mismatched": len(bad),
            "closed_before": MetadataValue.timestamp(result.cutoff),
            "per_feed": MetadataValue.md(audit_markdown(result)),
            "feeds": MetadataValue.json(
                [{"feed": s.feed, "table": s.table_name, "minutes": s.minutes, "ok": s.ok,
                  "bad_minutes": len(s.bad_minutes)} for s in result.by_feed()]
            ),
            "first_mismatches": MetadataValue.json(
                [{"feed": m.feed, "minute": _minute(m.minute), "status": m.status,
                  "ledger": m.ledger_count, "table": m.table_count} for m in bad[:FIRST_N]]
            ),
        }
    )


@multi_asset_check(
    specs=[
        AssetCheckSpec(CHECK_NAME, asset=key, additional_deps=[AUDIT_KEY],
                       description="every audited minute of the feeds writing this table has as "
                       "many distinct rows as the ledger says were stored")
        for key in CHECKED_TABLES
    ],
    can_subset=True,
)
def row_counts_match_ledger(context, warehouse: WarehouseResource):
    keys = [k for k in CHECKED_TABLES if k in {c.asset_key for c in context.selected_asset_check_keys}]
    with warehouse.open() as client:
        found = {key: open_mismatches(client, CHECKED_TABLES[key], FIRST_N) for key in keys}
    for key, (total, first) in found.items():
        yield AssetCheckResult(
            asset_key=key,
            check_name=CHECK_NAME,
            passed=total == 0,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "mismatched_minutes": total,
                "first_mismatched_minutes": MetadataValue.json(
                    [{"feed": m.feed, "minute": _minute(m.minute), "status": m.status,
                      "ledger": m.ledger_count, "table": m.table_count} for m in first]
                ),
            },
        )


ASSETS = [row_count_audit]
CHECKS = [row_counts_match_ledger]
