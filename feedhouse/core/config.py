"""Loading settings: `feedhouse.yaml` (or --config PATH) overridden by FEEDHOUSE_* variables.

A bad value raises SettingsError whose message is one line naming the setting; the CLI
prints it and exits 2. Credentials are refused in the YAML file (they belong in the
environment or a secrets file).
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_settings.exceptions import SettingsError as SourceError

from feedhouse.core.errors import SettingsError
from feedhouse.core.settings import ENV_PREFIX, Settings

DEFAULT_CONFIG_FILE = "feedhouse.yaml"


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
