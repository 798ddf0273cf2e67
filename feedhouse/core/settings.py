"""The settings schema: every setting, its default and its checks.

Top-level settings are flat so each has a plain env name (`warehouse_dsn` ->
FEEDHOUSE_WAREHOUSE_DSN); nested groups use `__` (FEEDHOUSE_SINK__BATCH_ROWS). Secrets are
SecretStr and are never printed. Reading them from YAML and the environment, and the one
line a bad value becomes, live in `feedhouse.core.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from feedhouse.core.dsn import normalize_dsn
from feedhouse.core.errors import SettingsError
from feedhouse.core.store_settings import EmbeddedStoreSettings

ENV_PREFIX = "FEEDHOUSE_"
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$"
# Venue names a feed may use, with the channels each offers; the ingest layer's adapter
# registry fills it in when it is imported (settings sit below the adapters, so they
# cannot ask for the list).
KNOWN_VENUES: dict[str, tuple[str, ...]] = {}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _existing_file(value: Path | None) -> Path | None:
    """A configured file (CA bundle, certificate, key, secret) must exist when set."""
    if value is not None and not value.expanduser().is_file():
        raise ValueError(f"file not found: {value}")
    return value.expanduser().resolve() if value is not None else None


def read_secret_file(path: Path) -> str:
    """A secret from a file (docker/Kubernetes secrets): its text without the final newline."""
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(f"cannot read {path} ({exc.strerror})") from None


class MqttSettings(Strict):
    """How an MQTT feed connects, subscribes and maps topics/payloads to readings."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    protocol: Literal["3.1.1", "5"] = "5"
    qos: Literal[0, 1, 2] = 1
    topics: list[str] = Field(default_factory=lambda: ["plant/+/+/+"])
    share_group: str = Field(
        "feedhouse",
        description="shared subscription group; '' = static: client i takes topics[i::clients]",
    )
    topic_template: str = "plant/{site}/{device_id}/{sensor}"
    payload_format: Literal["json", "json_array", "line"] = "json"
    client_id: str = "feedhouse"
    clients: int = Field(2, ge=1, le=64, description="subscriber partitions sharing the load")
    keepalive_s: int = Field(30, ge=5)
    session_expiry_s: int = Field(3600, ge=0)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(None, description="read the password from this file")
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    _files = field_validator("password_file", "ca_file", "client_cert", "client_key")(
        _existing_file
    )

    @model_validator(mode="after")
    def _tls_and_secret(self) -> MqttSettings:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        if (self.ca_file or self.client_cert) and not self.tls:
            raise ValueError("ca_file/client_cert need tls: true")
        if self.password_file is not None:
            if self.password is not None:
                raise ValueError("set password or password_file, not both")
            self.password = SecretStr(read_secret_file(self.password_file))
        return self
    field_map: dict[str, str] = Field(
        default_factory=dict, description="reading field -> payload key (payload names differ)"
    )
    dedup_key: Literal["seq", "device_ts"] = "seq"
    units: dict[str, str] = Field(
        default_factory=lambda: {
            "temperature": "C",
            "humidity": "%",
            "pressure": "hPa",
            "vibration": "mm/s",
            "current": "A",
        },
        description="unit per sensor where the payload carries none",
    )
    ts_unit: Literal["auto", "s", "ms", "us", "ns", "iso"] = "auto"
    batch_max: int = Field(2000, ge=1, le=100_000, description="messages per micro-batch")
    flush_ms: float = Field(
        50.0, ge=1, le=1000,
        description="the sink gathers this feed's rows up to this long into one insert "
        "(an embedded insert's CPU is mostly fixed: fewer, larger inserts under load; the "
        "first row after a quiet spell goes at once); exchange feeds use sink.batch_ms",
    )
    flush_max_ms: float = Field(
        150.0, ge=1, le=5000,
        description="under load the gather window grows past flush_ms, up to this: "
        "flush_ms x (the feed's readings/s over the last second) / flush_grow_from; fewer "
        "inserts (and chDB merges) per message where CPU is short, flush_ms where latency "
        "counts; at least flush_ms (a default below a raised flush_ms: no growth)",
    )
    flush_grow_from: float = Field(
        10_000.0, gt=0, le=10_000_000,
        description="readings/s of the feed up to which the gather window stays flush_ms",
    )
    queue_size: int = Field(20_000, ge=100, description="paho -> source queue (backpressure)")
    reconnect_initial_s: float = Field(0.2, gt=0, le=60)
    reconnect_max_s: float = Field(10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _static_needs_topics(self) -> MqttSettings:
        if not self.share_group and len(self.topics) < self.clients:
            raise ValueError(
                f"share_group '' (static subscriptions) needs at least one topic filter per "
                f"client: {len(self.topics)} topics for {self.clients} clients"
            )
        return self

    @field_validator("flush_max_ms")
    @classmethod
    def _max_not_below_flush(cls, value: float, info: ValidationInfo) -> float:
        # runs only when set (pydantic skips defaults): a default below a raised
        # flush_ms means no growth (the sink takes the larger of the two)
        flush_ms = info.data.get("flush_ms")
        if flush_ms is not None and value < flush_ms:
            raise ValueError(f"{value:g} is below mqtt.flush_ms ({flush_ms:g})")
        return value

    @field_validator("field_map")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        known = {"device_id", "sensor", "seq", "value", "unit", "device_ts", "site"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown reading field {unknown[0]!r} (known: {sorted(known)})")
        return value

    @field_validator("topic_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        import re

        for name in re.findall(r"\{([^}]*)\}", value):
            if name not in ("device_id", "sensor", "site", "_"):
                raise ValueError(f"topic_template names unknown field {{{name}}}")
        return value


class FeedSettings(Strict):
    """One configured feed: an exchange WebSocket or an MQTT subscription."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["exchange", "mqtt"] = "exchange"
    venue: str | None = None
    url: str | None = None
    symbols: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=lambda: ["trades"])
    dedup_window_s: float = Field(600.0, gt=0, le=86400)
    allowed_lateness_s: float = Field(5.0, ge=0, le=3600)
    stale_s: float = Field(30.0, gt=0)
    record_dir: Path | None = None
    # WebSocket reconnects: exponential backoff with jitter from initial to max seconds.
    reconnect_initial_s: float = Field(0.5, gt=0, le=60)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    # Frames an exchange feed may hold between its socket and the dataflow; when full the
    # client stops reading (backpressure). None: the source's default (100k frames).
    queue_frames: int | None = Field(None, ge=100, le=10_000_000)
    # Dagster's freshness check fails when this feed's newest event is older than this;
    # None: quality.freshness_s.
    freshness_s: float | None = Field(None, gt=0)
    queue_mb: float = Field(
        16.0, gt=0, le=4096, description="received frames held while the dataflow is behind "
        "(besides queue_frames): reading pauses beyond it (backpressure)")
    # The WebSocket library of an exchange feed: picows (default, ~4x less CPU per frame)
    # or websockets (the former client, kept as a fallback).
    ws_client: Literal["picows", "websockets"] = "picows"
    rest_url: str | None = Field(
        None, description="REST base of the venue's depth snapshots (Binance books: "
        "<rest_url>/api/v3/depth, /fapi/v1/depth, /dapi/v1/depth); default the venue's "
        "public host when the feed connects to the venue itself, none for a recorded session")
    mqtt: MqttSettings | None = None

    @field_validator("rest_url")
    @classmethod
    def _check_rest_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"not an http(s) URL without a query: {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _kind_needs(self) -> FeedSettings:
        if self.kind == "exchange" and not self.venue:
            raise ValueError("an exchange feed needs 'venue'")
        if self.kind == "mqtt" and self.mqtt is None:
            self.mqtt = MqttSettings()
        if self.venue is not None:
            if KNOWN_VENUES and self.venue not in KNOWN_VENUES:
                known = ", ".join(sorted(KNOWN_VENUES))
                raise ValueError(f"unknown venue {self.venue!r} (known: {known})")
            offered = KNOWN_VENUES.get(self.venue, ("trades", "quotes", "books"))
            wrong = [c for c in self.channels if c not in offered]
            if wrong:
                raise ValueError(f"channels: venue {self.venue!r} has no {wrong[0]!r} channel "
                                 f"(has: {', '.join(offered)})")
            if not self.channels:
                raise ValueError("channels: empty; give at least one of: " + ", ".join(offered))
        return self


class SinkSettings(Strict):
    batch_rows: int = Field(5000, ge=1, le=1_000_000)
    batch_ms: int = Field(
        2, ge=1, le=60_000,
        description="while the committer writes, an exchange feed's rows are handed over "
        "once the oldest is this old (it takes every job queued in its next round, so a "
        "longer wait only makes rows miss rounds; 20 -> 2 cut tick->row p99 at 2k trades/s "
        "by ~14 ms, docs/performance.md)")
    linger_ms: float = Field(
        30.0, ge=0, le=1000,
        description="right after an insert, the next waits up to this long for more rows "
        "(fewer, larger inserts under load; an idle pipeline's row goes at once)",
    )
    linger_from_rows: int = Field(
        100, ge=0, le=1_000_000,
        description="the linger applies once an insert carried this many rows (0: always); "
        "below it the rate is low and every row goes at once",
    )
    retry_initial_s: float = Field(0.05, gt=0)
    retry_max_s: float = Field(2.0, gt=0)
    buffer_after_s: float = Field(3.0, ge=0, description="unreachable this long -> buffer")
    replay_probe_s: float = Field(1.0, gt=0)
    candles_every_s: float = Field(
        15.0, ge=0, le=45, description="build the candles of closed minutes this often (0: off)"
    )
    store_hold_s: float = Field(
        3600.0, gt=0, description="the ingest keeps an embedded store open this long at most "
        "(it lets go at once when another process waits): each reopen restarts chDB's engine, "
        "which leaves ~5 threads and ~2.5 MB behind (chDB 4.4, measured)")


class QualitySettings(Strict):
    window_minutes: int = Field(60, ge=1)
    clock_skew_s: float = Field(5.0, ge=0)
    venue_silence_s: float = Field(300.0, gt=0)
    max_seq_gap: int = Field(1, ge=1)
    future_tolerance_s: float = Field(60.0, ge=0)
    venue_silence_overrides_s: dict[str, float] = Field(
        default_factory=dict, description="silence allowed per venue; others use venue_silence_s"
    )
    ledger_settle_s: float = Field(
        120.0, ge=0, description="ledger minutes younger than this are not checked yet"
    )
    book_rebuild_minutes: float = Field(
        60.0, gt=0, description="the books suite rebuilds a book at its window's end only from "
        "a snapshot at most this long before the window's start (an older one means reading "
        "every update since)"
    )
    sample_size: int = Field(10, ge=1, le=1000, description="offending keys kept per result")
    data_docs_keep_days: float = Field(
        7.0, gt=0, description="Data Docs validation pages older than this are deleted"
    )
    freshness_s: float = Field(
        600.0, gt=0, description="newest event of a feed older than this: its table is stale "
        "(Dagster's freshness checks; per feed: feeds[].freshness_s)"
    )
    sensor_ranges: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "temperature": (-50.0, 150.0),
            "humidity": (0.0, 100.0),
            "pressure": (800.0, 1200.0),
            "vibration": (0.0, 50.0),
            "current": (0.0, 500.0),
        }
    )


def _default_home() -> Path:
    return Path(".feedhouse")


class Settings(BaseSettings):
    """Every setting of feedhouse; see docs/user-guide.md 'Settings' for the table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(default_factory=_default_home, description="working folder for local state")
    warehouse_dsn: SecretStr | None = Field(
        None, description="chdb:///abs/dir or http(s)://user:pass@host:8123/db"
    )
    warehouse_lock_timeout_s: float = Field(30.0, gt=0)
    backfill_dsn: SecretStr | None = Field(
        None, description="where backfills write: a user that may read and write market data "
        "(default: warehouse_dsn)"
    )
    warehouse_dsn_file: Path | None = Field(None, description="read warehouse_dsn from this file")
    warehouse_ca_file: Path | None = None
    warehouse_verify: bool = True
    buffer_path: Path | None = None
    recovery_dir: Path | None = None
    recovery: bool = True
    reports_dir: Path | None = Field(
        None, description="audit reports and Data Docs (default: <home>/reports)"
    )
    archive_dir: Path | None = None
    instruments_dir: Path | None = Field(
        None, description="cache of the venues' instrument lists (contract sizes)"
    )
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = Field("127.0.0.1", description="address the metrics server binds")
    fault_file: Path | None = Field(None, description="fault injector switch (drills and tests)")
    dagster_automation: Literal["auto", "on", "off"] = Field(
        "auto", description="Dagster schedules and sensors start on or off; auto: on for a "
        "ClickHouse server, off for the embedded chDB store"
    )
    footprint_every_s: float = Field(
        10.0, ge=0, description="`feedhouse run` samples its memory, fds, threads and the "
        "store's parts and caches into run_status.json this often (0: never)")
    malloc_arena_max: int = Field(
        2, ge=0, description="`feedhouse run` caps glibc malloc's arenas (0: glibc's "
        "default, 8 per core): per-thread arenas each keep their own free memory")
    malloc_mmap_threshold_kb: int = Field(
        256, ge=0, le=32768, description="`feedhouse run`: blocks at least this large are "
        "mmapped and returned on free (0: glibc's sliding threshold, which rises to 32 MB)")
    malloc_trim_every_s: float = Field(
        30.0, ge=0, description="`feedhouse run` gives the memory glibc malloc keeps after "
        "frees back to the system this often (malloc_trim; 0: never): freed chunks scattered "
        "through its heaps otherwise stay resident and grow the RSS (docs/operations-soak.md)")
    embedded_store: EmbeddedStoreSettings = Field(default_factory=EmbeddedStoreSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    feeds: list[FeedSettings] = Field(default_factory=list)

    @field_validator("warehouse_dsn", "backfill_dsn", mode="after")
    @classmethod
    def _check_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(normalize_dsn(value.get_secret_value()))

    _files = field_validator("warehouse_dsn_file", "warehouse_ca_file")(_existing_file)

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        home = self.home.expanduser().resolve()
        self.home = home
        if self.warehouse_dsn_file is not None:
            if self.warehouse_dsn is not None:
                raise ValueError("set warehouse_dsn or warehouse_dsn_file, not both")
            text = read_secret_file(self.warehouse_dsn_file)
            self.warehouse_dsn = SecretStr(normalize_dsn(text.strip()))
        if self.warehouse_ca_file is not None and not self.dsn_is_https():
            raise ValueError("warehouse_ca_file needs an https:// warehouse_dsn")
        if self.warehouse_dsn is None:
            self.warehouse_dsn = SecretStr(f"chdb://{home / 'clickhouse'}")
        self.buffer_path = (self.buffer_path or home / "buffer.duckdb").expanduser().resolve()
        self.recovery_dir = (self.recovery_dir or home / "recovery").expanduser().resolve()
        self.instruments_dir = (self.instruments_dir or home / "instruments").expanduser().resolve()
        self.reports_dir = (self.reports_dir or home / "reports").expanduser().resolve()
        names = [f.name for f in self.feeds]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feed names must be unique, repeated: {', '.join(dupes)}")
        return self

    @property
    def dsn(self) -> str:
        assert self.warehouse_dsn is not None
        return self.warehouse_dsn.get_secret_value()

    def for_backfill(self) -> Settings:
        """These settings with the warehouse a backfill writes through (`backfill_dsn`):
        in production the ingest user may not read and Dagster's user may not write
        market data, and a backfill does both."""
        if self.backfill_dsn is None:
            return self
        return self.model_copy(update={"warehouse_dsn": self.backfill_dsn})

    def dsn_is_https(self) -> bool:
        return self.warehouse_dsn is not None and self.dsn.startswith("https://")

    def feed(self, name: str) -> FeedSettings:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise SettingsError(f"setting 'feeds': no feed named {name!r}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env wins over the YAML file, which arrives as init kwargs.
        return (env_settings, init_settings, file_secret_settings)


