"""Freshness checks: `fresh` on market/trades, market/quotes and iot/readings fails when a
feed's newest event is older than its threshold (feeds[].freshness_s, else
quality.freshness_s), naming the feed and its last event time.

Dagster's own `build_last_update_freshness_checks` judges an asset by one threshold and by
the time its last observation reported; these tables are written by many feeds at once,
each with its own pace, so the check asks the table per feed (one GROUP BY per table, in
one short warehouse visit) and does not depend on an observation having run just before.
Backfilled rows (feed `backfill:<venue>`) are history by design and are not judged.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from feedhouse.core.settings import Settings
from orchestration.assets.tables import QUOTES_KEY, READINGS_KEY, TRADES_KEY
from orchestration.resources.settings import SettingsResource
from orchestration.resources.warehouse import WarehouseResource

CHECK_NAME = "fresh"


@dataclass(frozen=True)
class FreshTable:
    table: str
    event_ts: str
    kind: str  # the feed kind that writes it: exchange | mqtt
    channel: str  # an exchange feed writes it when this channel is configured


FRESH_TABLES = {
    TRADES_KEY: FreshTable("market.trades", "exchange_ts", "exchange", "trades"),
    QUOTES_KEY: FreshTable("market.quotes", "exchange_ts", "exchange", "quotes"),
    READINGS_KEY: FreshTable("iot.readings", "device_ts", "mqtt", ""),
}


@dataclass(frozen=True)
class FeedFreshness:
    feed: str
    last_event_s: float | None  # None: nothing stored yet
    limit_s: float
    now_s: float

    @property
    def age_s(self) -> float | None:
        return None if self.last_event_s is None else self.now_s - self.last_event_s

    @property
    def fresh(self) -> bool:
        return self.age_s is not None and self.age_s <= self.limit_s

    def line(self) -> str:
        if self.last_event_s is None:
            return f"{self.feed}: no event stored yet (limit {self.limit_s:g} s)"
        return (f"{self.feed}: last event {utc(self.last_event_s)}, {self.age_s:.0f} s ago "
                f"(limit {self.limit_s:g} s)")


def utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def newest_per_feed(client, spec: FreshTable) -> dict[str, float]:
    rows = client.query(
        f"SELECT feed, toUnixTimestamp64Micro(toDateTime64(max({spec.event_ts}), 6)) "
        f"FROM {spec.table} WHERE NOT startsWith(feed, 'backfill:') GROUP BY feed"
    ).result_rows
    return {feed: us / 1e6 for feed, us in rows}


def judge(spec: FreshTable, newest: dict[str, float], settings: Settings, now_s: float
          ) -> list[FeedFreshness]:
    """Each feed that should write the table: the configured feeds of its kind and channel,
    and configured feeds found in it (a venue that sends quotes unasked); with no feed
    configured at all, the feeds found in it."""
    configured = {f.name: f for f in settings.feeds}
    expected = {
        f.name for f in settings.feeds
        if f.kind == spec.kind and (spec.kind == "mqtt" or spec.channel in f.channels)
    }
    names = expected | (set(newest) & set(configured)) if settings.feeds else set(newest)
    default = settings.quality.freshness_s
    out = []
    for name in sorted(names):
        feed = configured.get(name)
        limit = feed.freshness_s if feed is not None and feed.freshness_s else default
        out.append(FeedFreshness(name, newest.get(name), limit, now_s))
    return out


def freshness_result(key: AssetKey, spec: FreshTable, feeds: list[FeedFreshness]) -> AssetCheckResult:
    stale = [f for f in feeds if not f.fresh]
    seen = [f.last_event_s for f in feeds if f.last_event_s is not None]
    metadata: dict[str, object] = {
        "feeds": MetadataValue.md("| feed | last event | age s | limit s | fresh |\n|---|---|---|---|---|\n" + "\n".join(
            f"| {f.feed} | {utc(f.last_event_s) if f.last_event_s else '-'} | "
            f"{'-' if f.age_s is None else f'{f.age_s:.0f}'} | {f.limit_s:g} | "
            f"{'yes' if f.fresh else 'NO'} |" for f in feeds)),
        "stale_feeds": MetadataValue.json([f.line() for f in stale]),
    }  # fmt: skip
    if seen:
        metadata["last_event_time"] = MetadataValue.timestamp(max(seen))
    if not feeds:
        description = f"no configured feed writes {spec.table}: nothing to judge"
    elif stale:
        description = "stale: " + "; ".join(f.line() for f in stale)
    else:
        description = f"{len(feeds)} feed(s) fresh; newest event {utc(max(seen))}"
    return AssetCheckResult(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=not stale,
        severity=AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


@multi_asset_check(
    specs=[
        AssetCheckSpec(CHECK_NAME, asset=key,
                       description=f"every feed writing {spec.table} has an event newer than its "
                       "freshness threshold (feeds[].freshness_s, else quality.freshness_s)")
        for key, spec in FRESH_TABLES.items()
    ],
    can_subset=True,
)
def freshness_checks(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    loaded = settings.load()
    keys = [k for k in FRESH_TABLES if k in {c.asset_key for c in context.selected_asset_check_keys}]
    now_s = time.time()
    with warehouse.open() as client:
        newest = {key: newest_per_feed(client, FRESH_TABLES[key]) for key in keys}
    for key in keys:
        spec = FRESH_TABLES[key]
        result = freshness_result(key, spec, judge(spec, newest[key], loaded, now_s))
        if not result.passed:
            context.log.warning(f"{spec.table} {result.description}")
        yield result


CHECKS = [freshness_checks]
