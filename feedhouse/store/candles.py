"""1-minute candles (market.ohlcv_1m) built from deduplicated trades, for closed minutes.

There is no materialized view on market.trades: a view sums every inserted block, so a
batch inserted again after a crash (a new insert token, collapsed later by
ReplacingMergeTree) was counted twice in the candles. Here a candle is computed from
`market.trades FINAL` (one row per venue, symbol, trade_id) with INSERT ... SELECT, and
market.ohlcv_1m is a ReplacingMergeTree keyed by (venue, symbol, minute) with version
`built_ts`: building a minute again replaces its candle (read it with FINAL).

Which minutes a build covers (`CandleBuilder.build_due`):
- every minute that closed since the last build (`exchange_ts` older than now - `lateness_s`,
  rounded down to the minute), and
- every closed minute holding a trade inserted after its candle was built (looked for
  among trades inserted since the previous build started, minus `overlap_s`): late
  trades, buffer replays, backfills rebuild their minutes, and a minute is not rebuilt
  for the trades it already counts.
A builder starting without state resumes from the store itself: the newest candle's minute
and the newest `built_ts`. So `feedhouse run` (a periodic step on its committer thread, the
one that holds the warehouse client) and the audit (before it proves the candles) build the
same minutes the same way, and a minute built twice holds the same candle.

`candle_audit` compares each candle with the distinct trades of its minute: `trades` =
distinct (venue, symbol, trade_id) and `volume` = their sum(amount).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger("feedhouse.store.candles")

CANDLES_TABLE = "market.ohlcv_1m"
CANDLE_COLUMNS = ("venue", "symbol", "minute", "open", "high", "low", "close", "volume",
                  "notional", "trades", "built_ts")
DEFAULT_LATENESS_S = 5.0  # a minute is closed this long after its end (late trades rebuild it)
DEFAULT_OVERLAP_S = 30.0  # re-look this far behind the last build for newly inserted trades
DEFAULT_SETTLE_S = 5.0  # a trade inserted this long before a build may have missed it
MAX_MINUTES_PER_INSERT = 1440  # one INSERT ... SELECT covers at most a day of minutes

# One candle per (venue, symbol, minute) from the distinct trades (FINAL: one row per
# venue, symbol, trade_id, the latest inserted). Ties in time break on trade_id so a
# rebuild picks the same open/close.
_SELECT = (
    "SELECT venue, symbol, toStartOfMinute(exchange_ts) AS minute, "
    "argMin(price, (exchange_ts, trade_id)) AS open, max(price) AS high, min(price) AS low, "
    "argMax(price, (exchange_ts, trade_id)) AS close, sum(amount) AS volume, "
    "sum(price * amount) AS notional, toUInt64(count()) AS trades, now64(6) AS built_ts "
    "FROM market.trades FINAL WHERE {where} GROUP BY venue, symbol, minute"
)


def closed_cutoff(now_s: float, lateness_s: float = DEFAULT_LATENESS_S) -> int:
    """Start (epoch s) of the first minute not closed at `now_s`."""
    return int((now_s - lateness_s) // 60) * 60


def _minutes_sql(minutes: list[int]) -> str:
    return ",".join(str(int(m)) for m in minutes)


def build_minutes(client, minutes: Iterable[int]) -> int:
    """(Re)build the candles of these minutes (epoch s) from the distinct trades; returns
    how many minutes were asked for. Idempotent: a rebuilt candle replaces the old one."""
    wanted = sorted(set(minutes))
    for i in range(0, len(wanted), MAX_MINUTES_PER_INSERT):
        chunk = wanted[i : i + MAX_MINUTES_PER_INSERT]
        # the range prunes partitions (by day) and granules; IN picks the minutes
        where = (
            f"exchange_ts >= toDateTime64({chunk[0]}, 6, 'UTC') "
            f"AND exchange_ts < toDateTime64({chunk[-1] + 60}, 6, 'UTC') "
            f"AND toUInt32(toStartOfMinute(exchange_ts)) IN ({_minutes_sql(chunk)})"
        )
        client.command(
            f"INSERT INTO {CANDLES_TABLE} ({', '.join(CANDLE_COLUMNS)}) "
            + _SELECT.format(where=where)
        )
    return len(wanted)


def trade_minutes(client, lo: int, hi: int) -> list[int]:
    """The minutes (epoch s) in [lo, hi) that hold at least one trade."""
    rows = client.query(
        "SELECT DISTINCT toUInt32(toStartOfMinute(exchange_ts)) FROM market.trades "
        "WHERE exchange_ts >= toDateTime64({lo:UInt32}, 6, 'UTC') AND exchange_ts < toDateTime64({hi:UInt32}, 6, 'UTC')",
        parameters={"lo": lo, "hi": hi},
    ).result_rows
    return sorted(int(m) for (m,) in rows)


def due_minutes(client, *, closed_from: int, cutoff: int, inserted_since_us: int,
                settle_s: float = DEFAULT_SETTLE_S) -> list[int]:
    """Closed minutes (< cutoff) whose candles are due: among the minutes that closed since
    `closed_from` or hold a trade inserted at or after `inserted_since_us`, those with no
    candle yet or with a trade inserted after their candle was built (less `settle_s`: an
    insert still in flight on a server may not have been visible to that build)."""
    rows = client.query(
        "SELECT DISTINCT t.m FROM ("
        " SELECT venue, symbol, toUInt32(toStartOfMinute(exchange_ts)) AS m, "
        " max(inserted_ts) AS last_inserted FROM market.trades "
        " WHERE exchange_ts < toDateTime64({cutoff:UInt32}, 6, 'UTC') AND "
        " (exchange_ts >= toDateTime64({lo:UInt32}, 6, 'UTC') "
        "  OR inserted_ts >= fromUnixTimestamp64Micro({since:Int64}, 'UTC')) "
        " GROUP BY venue, symbol, m) AS t "
        "LEFT JOIN ("
        f" SELECT venue, symbol, toUInt32(minute) AS m, max(built_ts) AS built FROM {CANDLES_TABLE} "
        " WHERE minute < toDateTime({cutoff:UInt32}, 'UTC') GROUP BY venue, symbol, m) AS c "
        "ON t.venue = c.venue AND t.symbol = c.symbol AND t.m = c.m "
        "WHERE toUnixTimestamp64Micro(t.last_inserted) "
        "  > toUnixTimestamp64Micro(c.built) - {settle_us:Int64} "
        "SETTINGS join_use_nulls = 0",
        parameters={"cutoff": cutoff, "lo": max(closed_from, 0), "since": inserted_since_us,
                    "settle_us": int(settle_s * 1e6)},
    ).result_rows
    return sorted(int(m) for (m,) in rows)


def stored_watermarks(client) -> tuple[int, int]:
    """(first minute not built yet, newest built_ts in µs) as the candles table says;
    (0, 0) when it holds no candle."""
    count, newest_minute, newest_built = client.query(
        f"SELECT count(), toUInt32(max(minute)), toUnixTimestamp64Micro(max(built_ts)) "
        f"FROM {CANDLES_TABLE}"
    ).result_rows[0]
    if not count:
        return 0, 0
    return int(newest_minute) + 60, int(newest_built)


@dataclass
class BuildReport:
    minutes: int
    cutoff: int
    seconds: float


class CandleBuilder:
    """Builds the candles of minutes closed (or changed) since its last build.

    State is only a speed-up: a fresh builder resumes from the store (`stored_watermarks`)."""

    def __init__(self, *, lateness_s: float = DEFAULT_LATENESS_S,
                 overlap_s: float = DEFAULT_OVERLAP_S,
                 settle_s: float = DEFAULT_SETTLE_S) -> None:
        self.lateness_s = lateness_s
        self.overlap_s = overlap_s
        self.settle_s = settle_s
        self.closed_from: int | None = None  # first minute not built as closed yet
        self.inserted_since_us: int | None = None

    def build_due(self, client, now_s: float | None = None) -> BuildReport:
        started = time.monotonic()
        now_s = time.time() if now_s is None else now_s
        if self.closed_from is None or self.inserted_since_us is None:
            closed_from, built_us = stored_watermarks(client)
            self.closed_from = closed_from
            self.inserted_since_us = max(built_us - int(self.overlap_s * 1e6), 0) if built_us else 0
        cutoff = closed_cutoff(now_s, self.lateness_s)
        # trades inserted while this build runs are seen by the next one (overlap)
        next_since = int((now_s - self.overlap_s) * 1e6)
        minutes = due_minutes(client, closed_from=self.closed_from, cutoff=cutoff,
                              inserted_since_us=self.inserted_since_us, settle_s=self.settle_s)
        if minutes:
            build_minutes(client, minutes)
        self.closed_from = max(self.closed_from, cutoff)
        self.inserted_since_us = max(self.inserted_since_us, next_since)
        return BuildReport(len(minutes), cutoff, time.monotonic() - started)


class PeriodicCandles:
    """The `feedhouse run` step: `maybe_build(client)` builds when `every_s` passed since
    the last build (or `force`). A failed build (ClickHouse unreachable) is logged and
    tried again at the next period; it never stops ingest."""

    def __init__(self, every_s: float, builder: CandleBuilder | None = None) -> None:
        self.every_s = every_s
        self.builder = builder or CandleBuilder()
        self._next = 0.0
        self.builds = 0

    def maybe_build(self, client_of, force: bool = False) -> BuildReport | None:
        """`client_of()` returns the warehouse client (only called when a build is due)."""
        if self.every_s <= 0:
            return None
        now = time.monotonic()
        if now < self._next and not force:
            return None
        self._next = now + self.every_s
        try:
            report = self.builder.build_due(client_of())
        except Exception as exc:  # noqa: BLE001 - ingest goes on; the next period retries
            log.warning("building candles failed (tried again in %.0fs): %s", self.every_s,
                        str(exc).splitlines()[0] if str(exc) else repr(exc))
            return None
        self.builds += 1
        if report.minutes:
            log.info("built candles of %d minute(s) in %.3fs", report.minutes, report.seconds)
        return report


# --- proving the candles (the audit and the drills) ---------------------------------------


@dataclass(frozen=True)
class CandleCheck:
    venue: str
    symbol: str
    minute: int  # epoch s
    candle_trades: int  # 0 when there is no candle
    distinct_trades: int  # 0 when the minute holds no trade
    candle_volume: float
    distinct_volume: float

    @property
    def status(self) -> str:
        if self.candle_trades < self.distinct_trades:
            return "missing"
        if self.candle_trades > self.distinct_trades:
            return "extra"
        if not math.isclose(self.candle_volume, self.distinct_volume, rel_tol=1e-9, abs_tol=1e-12):
            return "volume"
        return "ok"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def candle_checks(client, lo: int, hi: int) -> list[CandleCheck]:
    """Every (venue, symbol, minute) in [lo, hi) that has a candle or trades: the candle's
    trades and volume against count() and sum(amount) of the distinct trades."""
    rows = client.query(
        "SELECT venue, symbol, toUInt32(minute) AS m, sum(ct), sum(dt), sum(cv), sum(dv) FROM ("
        f" SELECT venue, symbol, minute, trades AS ct, 0 AS dt, volume AS cv, 0. AS dv "
        f" FROM {CANDLES_TABLE} FINAL "
        " WHERE minute >= toDateTime({lo:UInt32}, 'UTC') AND minute < toDateTime({hi:UInt32}, 'UTC')"
        " UNION ALL "
        " SELECT venue, symbol, toStartOfMinute(exchange_ts) AS minute, 0 AS ct, "
        " count() AS dt, 0. AS cv, sum(amount) AS dv FROM market.trades FINAL "
        " WHERE exchange_ts >= toDateTime64({lo:UInt32}, 6, 'UTC') "
        " AND exchange_ts < toDateTime64({hi:UInt32}, 6, 'UTC') GROUP BY venue, symbol, minute"
        ") GROUP BY venue, symbol, m ORDER BY venue, symbol, m",
        parameters={"lo": lo, "hi": hi},
    ).result_rows
    return [CandleCheck(v, s, int(m), int(ct), int(dt), float(cv), float(dv))
            for v, s, m, ct, dt, cv, dv in rows]


def candle_mismatches(client, before: int | None = None) -> list[CandleCheck]:
    """Candles that disagree with the distinct trades, over every minute before `before`
    (epoch s; default: every minute)."""
    hi = before if before is not None else 2**32 - 60
    return [c for c in candle_checks(client, 0, hi) if not c.ok]


def candle_totals(client, before: int | None = None) -> dict:
    """sum(trades), sum(volume) of the candles against count(), sum(amount) of the
    distinct trades, over minutes before `before` (the drills' verdict figures)."""
    hi = before if before is not None else 2**32 - 60
    checks = candle_checks(client, 0, hi)
    return {
        "candle_trades": sum(c.candle_trades for c in checks),
        "distinct_trades": sum(c.distinct_trades for c in checks),
        "candle_volume": round(sum(c.candle_volume for c in checks), 9),
        "distinct_volume": round(sum(c.distinct_volume for c in checks), 9),
        "candle_minutes_bad": sum(not c.ok for c in checks),
    }
