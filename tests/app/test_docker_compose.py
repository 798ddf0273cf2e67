"""The production stack in docker/ (Docker cannot run here): the compose file's structure,
that no secret is written in it, that its mounts and secrets line up with the configs,
and that the ClickHouse users have exactly the grants they need."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from dataflows import metrics
from feedhouse.core.config import load_settings
from tests.support.paths import ROOT

DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
RESTARTS = {"always", "unless-stopped", "on-failure"}
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|DSN", re.IGNORECASE)
INTERPOLATED = re.compile(r"\$\{[A-Z][A-Z0-9_]*(:?[?-][^}]*)?\}")


def _oneshot(service: dict) -> bool:
    return (service.get("labels") or {}).get("feedhouse.oneshot") == "true"


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _mounts(service: dict) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes") or []:
        source, target = volume.split(":")[:2]
        out.append((source, target))
    return out


def test_every_service_is_buildable_restarts_and_reports_health():
    assert {
        "clickhouse",
        "migrate",
        "mosquitto",
        "postgres",
        "dagster-webserver",
        "dagster-daemon",
        "ingest-exchanges",
        "ingest-mqtt",
    } <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        assert service.get("restart") in RESTARTS, name
        if _oneshot(service):
            # runs to completion; whoever needs it waits for a successful exit
            assert service["restart"] == "on-failure"
            waiting = [
                s
                for s in SERVICES.values()
                if (s.get("depends_on") or {}).get(name, {}).get("condition")
                == "service_completed_successfully"
            ]
            assert waiting, name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert {"interval", "timeout", "retries"} <= set(check), name


def test_images_are_pinned():
    for name, service in SERVICES.items():
        image = service.get("image", "")
        if "build" in service:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), (name, image)
    assert SERVICES["clickhouse"]["image"] == "clickhouse/clickhouse-server:25.8"  # LTS


def test_dependencies_wait_for_health():
    for name, service in SERVICES.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in SERVICES, (name, dep)
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], (name, dep)
    for worker in ("ingest-exchanges", "ingest-mqtt", "dagster-daemon", "dagster-webserver"):
        deps = SERVICES[worker]["depends_on"]
        assert deps["clickhouse"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["ingest-mqtt"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"


def test_named_volumes_are_declared_used_and_hold_the_state():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in SERVICES.items():
        for source, _target in _mounts(service):
            if source.startswith((".", "/")):
                assert (DOCKER / source).is_file(), (name, source)  # bind-mounted config
            else:
                assert source in declared, (name, source)
                used.add(source)
    assert used == declared
    assert ("clickhouse-data", "/var/lib/clickhouse") in _mounts(SERVICES["clickhouse"])
    assert ("postgres-data", "/var/lib/postgresql/data") in _mounts(SERVICES["postgres"])
    for worker, group in (("ingest-exchanges", "exchanges"), ("ingest-mqtt", "mqtt")):
        service = SERVICES[worker]
        env, mounts = _env(service), dict((t, s) for s, t in _mounts(service))
        # the buffer file and the Bytewax recovery dir live on this worker's own volumes
        assert mounts[str(Path(env["FEEDHOUSE_BUFFER_PATH"]).parent)] == f"{group}-buffer"
        assert mounts[env["FEEDHOUSE_RECOVERY_DIR"]] == f"{group}-recovery"
        config = f"/etc/feedhouse/{group}.yaml"
        assert service["command"] == ["--config", config, "run"]
        assert mounts[config] == f"./feedhouse/{group}.yaml"
        assert env["FEEDHOUSE_METRICS_PORT"] == "9108" and "9108" in str(service["healthcheck"])


@pytest.mark.integration
def test_no_secret_values_in_the_compose_file():
    text = json.dumps(COMPOSE)  # parsed: comments are not part of the stack
    example = dict(
        line.split("=", 1)
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert all(v == "change-me" for v in example.values())
    for name, service in SERVICES.items():
        assert "env_file" not in service or all(
            str(f).endswith(".env") for f in service["env_file"]
        ), name
        for key, value in _env(service).items():
            if SECRET_WORDS.search(key) and not key.endswith("_FILE"):
                assert INTERPOLATED.search(value), (name, key)
            # a credential inside a URL is interpolated too
            for cred in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value):
                assert INTERPOLATED.fullmatch(cred), (name, key)
    for var in set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text)):
        assert var in example, var  # every variable the stack needs is documented
    for secret in COMPOSE["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    for path in ("docker/.env", "docker/secrets/ca.crt"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} is not git-ignored"


def test_dagster_instance_reads_credentials_from_env():
    instance = yaml.safe_load((DOCKER / "dagster" / "dagster.yaml").read_text())
    db = instance["storage"]["postgres"]["postgres_db"]
    for field in ("hostname", "db_name", "username", "password"):
        assert set(db[field]) == {"env"}, field
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    env = _env(SERVICES["dagster-daemon"])
    assert {db[f]["env"] for f in ("hostname", "db_name", "username", "password")} <= set(env)
    workspace = yaml.safe_load((DOCKER / "dagster" / "workspace.yaml").read_text())
    pyproject = (ROOT / "pyproject.toml").read_text()
    module = workspace["load_from"][0]["python_module"]["module_name"]
    assert f'module_name = "{module}"' in pyproject
    assert '"dagster-postgres==' in pyproject


def test_each_service_connects_as_its_own_clickhouse_user_over_tls():
    expected = {
        "migrate": "feedhouse_admin",
        "ingest-exchanges": "feedhouse_ingest",
        "ingest-mqtt": "feedhouse_ingest",
        "dagster-webserver": "feedhouse_dagster",
        "dagster-daemon": "feedhouse_dagster",
    }
    for name, user in expected.items():
        env = _env(SERVICES[name])
        database = "" if name == "migrate" else "/ops"  # ops exists once migrate ran
        assert re.fullmatch(
            rf"https://{user}:\$\{{[A-Z_]+:\?[^}}]+\}}@clickhouse:8443{database}",
            env["FEEDHOUSE_WAREHOUSE_DSN"],
        ), name
        assert env["FEEDHOUSE_WAREHOUSE_CA_FILE"] == "/run/secrets/ca_crt"
        assert "ca_crt" in SERVICES[name]["secrets"]


def test_mosquitto_mounts_match_its_shipped_config():
    conf = (DOCKER / "mosquitto" / "mosquitto.prod.conf").read_text()
    wanted = dict(re.findall(r"^(password_file|cafile|certfile|keyfile)\s+(\S+)", conf, re.M))
    service = SERVICES["mosquitto"]
    targets = {s["target"] for s in service["secrets"]}
    assert set(wanted.values()) <= targets
    assert ("./mosquitto/mosquitto.prod.conf", "/mosquitto/config/mosquitto.conf") in _mounts(
        service
    )
    assert "allow_anonymous false" in conf


def test_feed_group_configs_load(tmp_path):
    for group in ("exchanges", "mqtt"):
        text = (DOCKER / "feedhouse" / f"{group}.yaml").read_text()
        # the secret files exist only in the running stack: stand them in
        for secret in set(re.findall(r"/run/secrets/(\w+)", text)):
            (tmp_path / secret).write_text("secret\n")
        config = tmp_path / f"{group}.yaml"
        config.write_text(text.replace("/run/secrets/", f"{tmp_path}/"))
        settings = load_settings(config, warehouse_dsn="https://u:p@clickhouse:8443/default")
        assert settings.feeds, group
        assert "password:" not in text  # passwords come from password_file
    mqtt = load_settings(config, warehouse_dsn="https://h:8443/db").feeds[0].mqtt
    assert mqtt.tls and mqtt.port == 8883 and mqtt.password.get_secret_value() == "secret"


def test_dockerfile_runs_feedhouse_as_a_non_root_user():
    text = (DOCKER / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim-bookworm"] * 2
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["feedhouse"]' in text
    assert 'pip install ".[docker]"' in text
    assert "COPY sql ./feedhouse/sql" in text
    # the fast-path C module builds in the build stage: its setup.py and a compiler
    assert "COPY pyproject.toml setup.py" in text and " gcc " in text.split("FROM")[1]


def test_prometheus_alerts_use_exported_metrics():
    families = {family for family, _ in metrics.COUNTERS.values()}
    families |= {m.name for m in metrics.PipelineMetrics(process=False).collect()}
    alerts = (DOCKER / "prometheus" / "alerts.yml").read_text()
    used = set(re.findall(r"\b(feedhouse_[a-z_]+)", alerts))
    assert used and {re.sub(r"_(bucket|total)$", "", n) for n in used} <= families
    assert "feedhouse_consumer_lag_seconds > 5" in alerts


# --- ClickHouse users: least privilege ------------------------------------------------

USERS = ET.parse(DOCKER / "clickhouse" / "users.d" / "feedhouse.xml").getroot().find("users")
GRANT = re.compile(r"^GRANT (?P<privs>[A-Z ,]+) ON (?P<db>\w+)\.\*$")


def _grants(user: str) -> set[tuple[str, str]]:
    """(privilege, database) pairs of a user's <grants>; fails on anything else."""
    pairs = set()
    for query in USERS.find(user).find("grants").findall("query"):
        match = GRANT.match(query.text.strip())
        assert match, query.text  # no *.*, no WITH GRANT OPTION, no table-less forms
        for priv in match["privs"].split(","):
            pairs.add((priv.strip(), match["db"]))
    return pairs


def test_ingest_user_may_only_insert_into_data_tables():
    assert _grants("feedhouse_ingest") == {
        ("INSERT", "market"),
        ("INSERT", "iot"),
        ("INSERT", "ops"),
    }


def test_dagster_user_reads_everything_and_writes_ops_only():
    assert _grants("feedhouse_dagster") == {
        ("SELECT", "market"),
        ("SELECT", "iot"),
        ("SELECT", "ops"),
        ("INSERT", "ops"),
    }


def test_backfill_user_reads_and_writes_market_and_ops_only():
    assert _grants("feedhouse_backfill") == {
        ("SELECT", "market"),
        ("INSERT", "market"),
        ("SELECT", "ops"),
        ("INSERT", "ops"),
    }


def test_dagster_backfills_write_as_the_backfill_user():
    for name in ("dagster-webserver", "dagster-daemon"):
        env = _env(SERVICES[name])
        assert re.fullmatch(
            r"https://feedhouse_backfill:\$\{[A-Z_]+:\?[^}]+\}@clickhouse:8443/ops",
            env["FEEDHOUSE_BACKFILL_DSN"],
        ), name
        assert dict((t, s) for s, t in _mounts(SERVICES[name]))[env["FEEDHOUSE_ARCHIVE_DIR"]] == "archive"


def test_admin_user_manages_only_the_feedhouse_databases():
    grants = _grants("feedhouse_admin")
    assert {db for _, db in grants} == {"market", "iot", "ops"}
    assert {p for p, _ in grants} == {
        "CREATE DATABASE",
        "CREATE TABLE",
        "CREATE VIEW",
        "ALTER",
        "SELECT",
        "INSERT",
    }


@pytest.mark.parametrize(
    "user", ["feedhouse_admin", "feedhouse_ingest", "feedhouse_dagster", "feedhouse_backfill"]
)
def test_users_take_passwords_from_the_environment(user):
    element = USERS.find(user)
    password = element.find("password")
    assert password is not None and not (password.text or "").strip()
    variable = password.get("from_env")
    assert variable in _env(SERVICES["clickhouse"])
    assert INTERPOLATED.fullmatch(_env(SERVICES["clickhouse"])[variable])
    assert element.find("access_management") is None  # cannot create users or grant
    assert element.find("networks") is not None
    for tag in ("password_sha256_hex", "password_double_sha1_hex", "no_password"):
        assert element.find(tag) is None


def test_server_config_removes_the_default_user_and_plaintext_ports():
    assert USERS.find("default").get("remove") == "remove"
    config = ET.parse(DOCKER / "clickhouse" / "config.d" / "feedhouse.xml").getroot()
    for port in ("http_port", "tcp_port", "mysql_port", "postgresql_port"):
        assert config.find(port).get("remove"), port
    assert config.findtext("https_port") == "8443"
    assert (
        config.findtext("access_control_improvements/select_from_system_db_requires_grant")
        == "true"
    )
    assert config.find("user_directories/local_directory") is None
