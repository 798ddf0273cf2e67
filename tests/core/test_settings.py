"""Settings: YAML values, env overrides, and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedhouse.core.config import load_settings
from feedhouse.core.errors import SettingsError
from tests.support.cli import run_cli


def test_yaml_value_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "feedhouse.yaml"
    config.write_text("home: state\nsink:\n  batch_rows: 1234\nwarehouse_lock_timeout_s: 7\n")
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("FEEDHOUSE_"):
            monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.sink.batch_rows == 1234
    assert settings.warehouse_lock_timeout_s == 7
    assert settings.home == (tmp_path / "state").resolve()
    # the default store is an absolute chdb:/// path under home
    assert settings.dsn == f"chdb://{tmp_path.resolve() / 'state' / 'clickhouse'}"
    assert settings.buffer_path == tmp_path.resolve() / "state" / "buffer.duckdb"

    monkeypatch.setenv("FEEDHOUSE_SINK__BATCH_ROWS", "99")
    monkeypatch.setenv("FEEDHOUSE_WAREHOUSE_LOCK_TIMEOUT_S", "3.5")
    settings = load_settings()
    assert settings.sink.batch_rows == 99
    assert settings.warehouse_lock_timeout_s == 3.5


def test_relative_chdb_dsn_becomes_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(warehouse_dsn="chdb://relative/store")
    assert settings.dsn == f"chdb://{tmp_path.resolve() / 'relative' / 'store'}"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"warehouse_dsn": "ftp://host"}, "setting 'warehouse_dsn': must start with"),
        ({"sink": {"batch_rows": 0}}, "setting 'sink.batch_rows': "),
        ({"feeds": [{"name": "x", "kind": "exchange"}]}, "setting 'feeds.0': an exchange feed needs 'venue'"),
        ({"feeds": [{"name": "x", "venue": "binance", "dedup_window_s": -1}]}, "setting 'feeds.0.dedup_window_s'"),
        ({"no_such_thing": 1}, "setting 'no_such_thing': unknown setting"),
        ({"feeds": [{"name": "x", "venue": "binance", "rest_url": "api.binance.com"}]},
         "setting 'feeds.0.rest_url': not an http(s) URL without a query: 'api.binance.com'"),
        ({"feeds": [{"name": "m", "kind": "mqtt", "mqtt": {"flush_ms": 100, "flush_max_ms": 40}}]},
         "setting 'feeds.0.mqtt.flush_max_ms': 40 is below mqtt.flush_ms (100)"),
        ({"feeds": [{"name": "m", "kind": "mqtt", "mqtt": {"flush_grow_from": 0}}]},
         "setting 'feeds.0.mqtt.flush_grow_from': "),
    ],
)
def test_bad_values_name_the_setting(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


@pytest.mark.integration
def test_bad_setting_stops_cli_with_one_line(tmp_path: Path) -> None:
    result = run_cli("init", cwd=tmp_path, FEEDHOUSE_SINK__BATCH_MS="soon")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: setting 'sink.batch_ms': Input should be a valid integer, unable to parse "
        "string as an integer"
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".feedhouse").exists(), "nothing may be written on a bad setting"


@pytest.mark.integration
def test_bad_yaml_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("sink: [unclosed\n")
    result = run_cli("--config", str(config), "init", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: config file {config}: not valid YAML at line 2"
    missing = run_cli("--config", str(tmp_path / "nope.yaml"), "init", cwd=tmp_path)
    assert missing.returncode == 2
    assert "cannot read (No such file or directory)" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_password_never_printed(tmp_path: Path) -> None:
    dsn = "http://user:Sentinel-Secret-42@127.0.0.1:1/db"
    result = run_cli("sql", "SELECT 1", cwd=tmp_path, FEEDHOUSE_WAREHOUSE_DSN=dsn,
                     FEEDHOUSE_WAREHOUSE_LOCK_TIMEOUT_S="1")
    assert result.returncode != 0
    assert "Sentinel-Secret-42" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_backfills_write_through_backfill_dsn_when_set(tmp_path, monkeypatch):
    from feedhouse.core.config import load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FEEDHOUSE_WAREHOUSE_DSN", "http://reader:r@ch.example:8123/ops")
    plain = load_settings()
    assert plain.for_backfill().dsn == plain.dsn  # unset: the same warehouse
    monkeypatch.setenv("FEEDHOUSE_BACKFILL_DSN", "http://writer:w@ch.example:8123/ops")
    settings = load_settings()
    assert settings.dsn == "http://reader:r@ch.example:8123/ops"
    assert settings.for_backfill().dsn == "http://writer:w@ch.example:8123/ops"
    assert "w@" not in repr(settings)  # a secret like warehouse_dsn


@pytest.mark.integration
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FEEDHOUSE_FEEDS": "notjson"},
         "error: setting 'feeds': FEEDHOUSE_FEEDS is not valid JSON (Expecting value at char 0)"),
        ({"FEEDHOUSE_SINK": "{bad"},
         "error: setting 'sink': FEEDHOUSE_SINK is not valid JSON (Expecting property name "
         "enclosed in double quotes at char 1)"),
        ({"FEEDHOUSE_QUALITY__SENSOR_RANGES": "x", "FEEDHOUSE_QUALITY__CLOCK_SKEW_S": "soon"},
         "error: setting 'quality.sensor_ranges': FEEDHOUSE_QUALITY__SENSOR_RANGES is not "
         "valid JSON (Expecting value at char 0)"),
    ],
)
def test_env_value_that_is_not_json_is_one_line(tmp_path: Path, env: dict, expected: str) -> None:
    result = run_cli("init", cwd=tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / ".feedhouse").exists(), "nothing may be written on a bad setting"


@pytest.mark.integration
def test_env_json_error_never_shows_the_value(tmp_path: Path) -> None:
    result = run_cli("init", cwd=tmp_path, FEEDHOUSE_FEEDS='[{"password": "Sentinel-Secret-42"')
    assert result.returncode == 2
    assert "Sentinel-Secret-42" not in result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.integration
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"sink: [unclosed\n", "not valid YAML at line 2"),
        (b"- sink\n- feeds\n", "must be a mapping of settings"),
        (b"just words\n", "must be a mapping of settings"),
        (b"1: 2\n", "setting names must be text, not 1"),
        (b"\xff\xfe sink: {}\n", "not UTF-8 text (byte 0)"),
    ],
)
def test_malformed_default_yaml_is_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "feedhouse.yaml").write_bytes(content)
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: config file feedhouse.yaml: {expected}"]
