"""What one day's audit report shows, read from ClickHouse in one short warehouse block.

Every figure is plain SQL over the data tables and the ops.* tables, bound to the day
[start, end) with server-side parameters; the dataclass below is what the HTML and the
Markdown summary render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from feedhouse.core.errors import FeedhouseError
from feedhouse.store.classify import first_line

# Rows per hour per source: trades by venue, readings by feed.
ROWS_PER_HOUR = """
SELECT source, hour, count() AS rows FROM (
    SELECT venue AS source, toHour(exchange_ts) AS hour FROM market.trades
    WHERE exchange_ts >= {start:DateTime64(6, 'UTC')} AND exchange_ts < {end:DateTime64(6, 'UTC')}
    UNION ALL
    SELECT concat('iot ', if(feed = '', 'readings', feed)) AS source, toHour(device_ts) AS hour
    FROM iot.readings
    WHERE device_ts >= {start:DateTime64(6, 'UTC')} AND device_ts < {end:DateTime64(6, 'UTC')}
)
GROUP BY source, hour ORDER BY source, hour
"""

# Best bid/ask rows per venue: a table of their own, not counted in "rows" (trades and
# readings), which the verdict and the rows-per-hour chart use.
QUOTES = """
SELECT venue AS source, count() AS rows FROM market.quotes
WHERE exchange_ts >= {start:DateTime64(6, 'UTC')} AND exchange_ts < {end:DateTime64(6, 'UTC')}
GROUP BY venue ORDER BY venue
"""

LEDGER = """
SELECT feed, sum(received) AS received, sum(invalid) AS invalid, sum(parsed) AS parsed,
       sum(duplicates) AS duplicates, sum(inserted) AS inserted, sum(buffered) AS buffered,
       sum(replayed) AS replayed
FROM ops.ingest_ledger
WHERE minute >= {start:DateTime64(6, 'UTC')} AND minute < {end:DateTime64(6, 'UTC')}
GROUP BY feed ORDER BY feed
"""

# Ingest lag in milliseconds: received - exchange (network + venue) and inserted - received
# (feedhouse itself). Quantiles are approximate (ClickHouse quantiles()).
LAG = """
SELECT source, count() AS rows,
       quantiles(0.5, 0.95, 0.99)(dateDiff('microsecond', event_ts, received_ts) / 1000) AS recv_ms,
       quantiles(0.5, 0.95, 0.99)(dateDiff('microsecond', received_ts, inserted_ts) / 1000) AS ins_ms
FROM (
    SELECT venue AS source, exchange_ts AS event_ts, received_ts, inserted_ts FROM market.trades
    WHERE exchange_ts >= {start:DateTime64(6, 'UTC')} AND exchange_ts < {end:DateTime64(6, 'UTC')}
    UNION ALL
    SELECT concat('iot ', if(feed = '', 'readings', feed)), device_ts, received_ts, inserted_ts
    FROM iot.readings
    WHERE device_ts >= {start:DateTime64(6, 'UTC')} AND device_ts < {end:DateTime64(6, 'UTC')}
)
GROUP BY source ORDER BY source
"""

GAPS = """
SELECT feed, venue, gap_start, gap_end, kind, reason, missing
FROM ops.feed_gaps
WHERE gap_start < {end:DateTime64(6, 'UTC')} AND gap_end >= {start:DateTime64(6, 'UTC')}
ORDER BY gap_start, feed
"""

# Each replay of a feed (its rows over every table it wrote: data rows and ledger rows, as
# the reconciliation counts them) with the outcome of its latest reconciliation ('' when
# none ran yet). Ledger batches carry no event time (epoch 0): left out of the range.
REPLAYS = """
SELECT r.replay_id AS replay_id, r.feed AS feed, r.tables AS tables, r.rows AS rows,
       r.buffered_rows AS buffered_rows, r.first_event_ts AS first_event_ts,
       r.last_event_ts AS last_event_ts, r.started_ts AS started_ts,
       r.finished_ts AS finished_ts, r.status AS status,
       c.status AS reconciliation, c.explanation AS explanation, c.table_rows AS table_rows
FROM (
    SELECT replay_id, feed,
           arrayStringConcat(arraySort(groupUniqArray(table_name)), ', ') AS tables,
           sum(rows) AS rows, sum(buffered_rows) AS buffered_rows,
           minIf(first_event_ts, first_event_ts > toDateTime64(0, 6, 'UTC')) AS first_event_ts,
           maxIf(last_event_ts, last_event_ts > toDateTime64(0, 6, 'UTC')) AS last_event_ts,
           min(started_ts) AS started_ts, max(finished_ts) AS finished_ts,
           if(countIf(status != 'finished') = 0, 'finished', 'failed') AS status
    FROM ops.replay_log
    GROUP BY replay_id, feed
) AS r
LEFT JOIN (
    SELECT replay_id, feed, argMax(status, checked_ts) AS status,
           argMax(explanation, checked_ts) AS explanation,
           argMax(table_rows, checked_ts) AS table_rows
    FROM ops.reconciliation GROUP BY replay_id, feed
) AS c ON c.replay_id = r.replay_id AND c.feed = r.feed
WHERE (r.started_ts >= {start:DateTime64(6, 'UTC')} AND r.started_ts < {end:DateTime64(6, 'UTC')})
   OR (r.first_event_ts < {end:DateTime64(6, 'UTC')} AND r.last_event_ts >= {start:DateTime64(6, 'UTC')})
ORDER BY r.started_ts, r.feed
SETTINGS join_use_nulls = 0
"""

AUDITS = """
SELECT feed, table_name, count() AS minutes, countIf(status = 'ok') AS ok,
       countIf(status = 'missing') AS missing, countIf(status = 'extra') AS extra,
       sum(difference) AS difference,
       arraySlice(arraySort(groupArrayIf(minute, status != 'ok')), 1, 5) AS bad_minutes
FROM ops.row_count_audit FINAL
WHERE minute >= {start:DateTime64(6, 'UTC')} AND minute < {end:DateTime64(6, 'UTC')}
GROUP BY feed, table_name ORDER BY feed, table_name
"""

# Quality results for windows that overlap the day, per suite and expectation.
QUALITY = """
SELECT suite, expectation, severity, count() AS runs, countIf(success = 0) AS failures,
       max(unexpected_count) AS max_unexpected,
       argMaxIf(sample, checked_ts, success = 0) AS last_sample,
       max(checked_ts) AS last_checked
FROM ops.quality_results
WHERE window_start < {end:DateTime64(6, 'UTC')} AND window_end > {start:DateTime64(6, 'UTC')}
GROUP BY suite, expectation, severity
ORDER BY failures DESC, suite, expectation
"""


def _utc(value: Any) -> Any:
    """ClickHouse hands back naive datetimes for UTC columns: make them aware."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, list):
        return [_utc(v) for v in value]
    return value


def _records(client, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        result = client.query(sql, parameters=params)
    except Exception as exc:  # e.g. the schema is missing: one line, not a traceback
        raise FeedhouseError(f"audit report: {first_line(exc)}") from None
    names = result.column_names
    return [{n: _utc(v) for n, v in zip(names, row, strict=True)} for row in result.result_rows]


@dataclass
class DayData:
    day: date
    generated: datetime
    rows_per_hour: list[dict] = field(default_factory=list)
    ledger: list[dict] = field(default_factory=list)
    lag: list[dict] = field(default_factory=list)
    gaps: list[dict] = field(default_factory=list)
    replays: list[dict] = field(default_factory=list)
    audits: list[dict] = field(default_factory=list)
    quality: list[dict] = field(default_factory=list)
    quotes: list[dict] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(r["rows"] for r in self.rows_per_hour)

    def problems(self) -> list[str]:
        """Why the day is not complete; empty when it is."""
        found = []
        if not self.total_rows:
            found.append("no rows were ingested")
        if not self.audits:
            found.append("no row-count audit ran")
        for a in self.audits:
            if a["ok"] != a["minutes"]:
                found.append(
                    f"row-count audit {a['feed']} {a['table_name']}: "
                    f"{a['minutes'] - a['ok']} of {a['minutes']} minutes not ok"
                )
        for r in self.replays:
            if r["status"] != "finished":
                found.append(f"replay {r['replay_id']} ({r['feed']}) {r['status']}")
            elif not r["reconciliation"]:
                found.append(f"replay {r['replay_id']} ({r['feed']}) not reconciled yet")
            elif r["reconciliation"] != "ok":
                found.append(
                    f"reconciliation of {r['replay_id']} ({r['feed']}): {r['reconciliation']}"
                )
        if not self.quality:
            found.append("no quality check ran")
        for q in self.quality:
            if q["severity"] == "ERROR" and q["failures"]:
                found.append(f"quality {q['suite']}: {q['expectation']} failed {q['failures']}x")
        return found

    @property
    def complete(self) -> bool:
        return not self.problems()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def load_day(client, day: date, now: datetime | None = None) -> DayData:
    start, end = day_bounds(day)
    params = {"start": start, "end": end}
    return DayData(
        day=day,
        generated=now or datetime.now(UTC),
        rows_per_hour=_records(client, ROWS_PER_HOUR, params),
        ledger=_records(client, LEDGER, params),
        lag=_records(client, LAG, params),
        gaps=_records(client, GAPS, params),
        replays=_records(client, REPLAYS, params),
        audits=_records(client, AUDITS, params),
        quality=_records(client, QUALITY, params),
        quotes=_records(client, QUOTES, params),
    )
