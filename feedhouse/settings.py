"""Settings: `feedhouse.yaml` (or --config PATH) overridden by FEEDHOUSE_* environment variables.

Top-level settings are flat so each has a plain env name (`warehouse_dsn` ->
FEEDHOUSE_WAREHOUSE_DSN); nested groups use `__` (FEEDHOUSE_SINK__BATCH_ROWS). A bad value
raises SettingsError whose message is one line naming the setting; the CLI prints it and
exits 2. Secrets are SecretStr and are never printed.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError as SourceError

from feedhouse.errors import SettingsError

DEFAULT_CONFIG_FILE = "feedhouse.yaml"
ENV_PREFIX = "FEEDHOUSE_"
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_\-]{0,62}$"


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
    mqtt: MqttSettings | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> FeedSettings:
        if self.kind == "exchange" and not self.venue:
            raise ValueError("an exchange feed needs 'venue'")
        if self.kind == "mqtt" and self.mqtt is None:
            self.mqtt = MqttSettings()
        if self.venue is not None:
            from dataflows.venues import VENUES  # late: settings stay importable alone

            if VENUES and self.venue not in VENUES:
                known = ", ".join(sorted(VENUES))
                raise ValueError(f"unknown venue {self.venue!r} (known: {known})")
        return self


class SinkSettings(Strict):
    batch_rows: int = Field(5000, ge=1, le=1_000_000)
    batch_ms: int = Field(20, ge=1, le=60_000)
    retry_initial_s: float = Field(0.05, gt=0)
    retry_max_s: float = Field(2.0, gt=0)
    buffer_after_s: float = Field(3.0, ge=0, description="unreachable this long -> buffer")
    replay_probe_s: float = Field(1.0, gt=0)


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
    sample_size: int = Field(10, ge=1, le=1000, description="offending keys kept per result")
    data_docs_keep_days: float = Field(
        7.0, gt=0, description="Data Docs validation pages older than this are deleted"
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
    """Every setting of feedhouse; see README 'Settings' for the table."""

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
    reports_dir: Path = Path("reports")
    archive_dir: Path | None = None
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = Field("127.0.0.1", description="address the metrics server binds")
    fault_file: Path | None = Field(None, description="fault injector switch (drills and tests)")
    sink: SinkSettings = Field(default_factory=SinkSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    feeds: list[FeedSettings] = Field(default_factory=list)

    @field_validator("warehouse_dsn", "backfill_dsn", mode="after")
    @classmethod
    def _check_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from feedhouse.warehouse import normalize_dsn  # one parser for DSNs

        return SecretStr(normalize_dsn(value.get_secret_value()))

    _files = field_validator("warehouse_dsn_file", "warehouse_ca_file")(_existing_file)

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        home = self.home.expanduser().resolve()
        self.home = home
        if self.warehouse_dsn_file is not None:
            if self.warehouse_dsn is not None:
                raise ValueError("set warehouse_dsn or warehouse_dsn_file, not both")
            from feedhouse.warehouse import normalize_dsn

            text = read_secret_file(self.warehouse_dsn_file)
            self.warehouse_dsn = SecretStr(normalize_dsn(text.strip()))
        if self.warehouse_ca_file is not None and not self.dsn_is_https():
            raise ValueError("warehouse_ca_file needs an https:// warehouse_dsn")
        if self.warehouse_dsn is None:
            self.warehouse_dsn = SecretStr(f"chdb://{home / 'clickhouse'}")
        self.buffer_path = (self.buffer_path or home / "buffer.duckdb").expanduser().resolve()
        self.recovery_dir = (self.recovery_dir or home / "recovery").expanduser().resolve()
        self.reports_dir = self.reports_dir.expanduser().resolve()
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


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"config file {path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SettingsError(f"config file {path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: must be a mapping of settings")
    odd = [key for key in data if not isinstance(key, str)]
    if odd:
        raise SettingsError(f"config file {path}: setting names must be text, not {odd[0]!r}")
    return data


def _refuse_secrets_in_file(path: Path, data: dict[str, Any]) -> None:
    """Credentials come from the environment or a secrets file, never from feedhouse.yaml
    (a file that gets copied, committed and mounted everywhere)."""
    for name in ("warehouse_dsn", "backfill_dsn"):
        value = data.get(name)
        if isinstance(value, str) and "@" in value and _has_password(value):
            raise SettingsError(
                f"setting '{name}': {path} holds a password; set {ENV_PREFIX}{name.upper()} "
                f"or put the DSN in a file named by {'warehouse_dsn_file' if name == 'warehouse_dsn' else 'the environment'}"
            )
    for i, feed in enumerate(data.get("feeds") or []):
        mqtt = feed.get("mqtt") if isinstance(feed, dict) else None
        if isinstance(mqtt, dict) and mqtt.get("password") is not None:
            raise SettingsError(
                f"setting 'feeds.{i}.mqtt.password': {path} holds a password; use "
                "mqtt.password_file (a secrets file) or FEEDHOUSE_FEEDS"
            )


def _has_password(dsn: str) -> bool:
    try:
        return bool(urlsplit(dsn.strip()).password)
    except ValueError:
        return False


def _one_line(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "settings"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"setting '{loc}': {msg}{more}"


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _env_target(path: list[str]) -> Any:
    """The annotation FEEDHOUSE_A__B__C feeds (path ['a', 'b', 'c']), None if it feeds none."""
    annotation: Any = Settings
    for key in path:
        annotation = _strip_optional(annotation)
        if _is_model(annotation):
            field = annotation.model_fields.get(key)
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    return annotation


def _is_complex(annotation: Any) -> bool:
    """Whether pydantic-settings decodes an env value for this annotation as JSON."""
    annotation = _strip_optional(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_complex(a) for a in get_args(annotation))
    container = get_origin(annotation) or annotation
    return container in (list, dict, tuple, set, frozenset) or _is_model(annotation)


def _env_one_line(exc: SourceError) -> str:
    """One line for an env value pydantic-settings could not read; names the variable.

    pydantic-settings says only 'error parsing value for field "quality"'; find the
    FEEDHOUSE_QUALITY[__...] variable that holds a JSON setting but is not JSON. The value
    itself is never shown (it may be a secret).
    """
    field = exc.args[0].split('"')[1] if exc.args and exc.args[0].count('"') >= 2 else ""
    prefix = ENV_PREFIX + field.upper()
    for name, value in sorted(os.environ.items()):
        upper = name.upper()
        if not field or (upper != prefix and not upper.startswith(prefix + "__")):
            continue
        path = upper.removeprefix(ENV_PREFIX).lower().split("__")
        if not _is_complex(_env_target(path)):
            continue
        try:
            json.loads(value)
        except ValueError as err:
            why = f"{err.msg} at char {err.pos}" if isinstance(err, json.JSONDecodeError) else err
            return f"setting '{'.'.join(path)}': {name} is not valid JSON ({why})"
    cause = exc.__cause__
    why = f" ({type(cause).__name__})" if cause is not None else ""
    return f"setting '{field or 'settings'}': cannot read {prefix}* from the environment{why}"


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from YAML (explicit path, or ./feedhouse.yaml if present) and env."""
    data: dict[str, Any] = {}
    path = None
    if config is not None:
        path = Path(config)
    elif os.environ.get(ENV_PREFIX + "CONFIG"):
        path = Path(os.environ[ENV_PREFIX + "CONFIG"])
    elif Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None:
        data = _read_yaml(path)
        _refuse_secrets_in_file(path, data)
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None
    except SourceError as exc:  # an env value that should be JSON and is not
        raise SettingsError(_env_one_line(exc)) from None
