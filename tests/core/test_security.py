"""Security and hygiene: secrets never printed, TLS settings honoured, identifiers allow-listed,
values always bound as parameters."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import socket
import ssl
import threading
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedhouse.core.config import load_settings
from feedhouse.core.dsn import redact_dsn
from feedhouse.core.errors import FeedhouseError, SettingsError
from feedhouse.core.sqlsafe import identifier, table_name
from feedhouse.store.client import connect, warehouse
from tests.support.cli import run_cli

SENTINEL = "S3ntinel-pw"
SENTINEL_DSN = f"http://u:{SENTINEL}@127.0.0.1:1/db"


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert "S3ntinel" not in text, text


# --- credentials never printed ---------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [("init",), ("sql", "SELECT 1"), ("analytics", "vwap"), ("sql", "--help"), ("--help",)],
)
def test_cli_never_prints_the_warehouse_password(tmp_path, args):
    out = run_cli(
        *args,
        cwd=tmp_path,
        FEEDHOUSE_WAREHOUSE_DSN=SENTINEL_DSN,
        FEEDHOUSE_HOME=str(tmp_path / "fh"),
    )
    _assert_clean(out.stdout, out.stderr)
    if args[-1] != "--help":
        assert out.returncode == 2, out.stderr
        assert "Traceback" not in out.stderr
        assert "u:***@127.0.0.1:1" in out.stderr  # the DSN is named, its password is not
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.integration
@pytest.mark.parametrize(
    "dsn",
    [
        f"http://u:{SENTINEL}@pw@127.0.0.1:1/db",  # unencoded '@' in the password
        f"http://u@127.0.0.1:1/db?password={SENTINEL}",
        f"http://u:{SENTINEL}/x@127.0.0.1:1/db",
    ],
)
def test_odd_dsns_do_not_leak_pieces_of_the_password(tmp_path, dsn):
    out = run_cli("sql", "SELECT 1", cwd=tmp_path, FEEDHOUSE_WAREHOUSE_DSN=dsn)
    assert out.returncode == 2
    _assert_clean(out.stdout, out.stderr, redact_dsn(dsn))


@pytest.mark.integration
def test_secrets_in_a_config_file_stay_hidden_when_another_setting_is_wrong(tmp_path):
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(SENTINEL_DSN + "\n")
    pw_file = tmp_path / "mqtt_pw"
    pw_file.write_text(SENTINEL + "\n")
    config = tmp_path / "feedhouse.yaml"
    config.write_text(
        f"warehouse_dsn_file: {dsn_file}\n"
        "sink: {batch_rows: -1}\n"
        "feeds:\n"
        "  - {name: sensors, kind: mqtt, mqtt: {password: " + SENTINEL + ", qos: 7}}\n"
    )
    out = run_cli("--config", str(config), "sql", "SELECT 1", cwd=tmp_path)
    assert out.returncode == 2 and "setting '" in out.stderr
    _assert_clean(out.stdout, out.stderr)
    # Fixed config: the secrets load (from the files) and still print nowhere.
    config.write_text(
        f"warehouse_dsn_file: {dsn_file}\n"
        "feeds:\n"
        f"  - {{name: sensors, kind: mqtt, mqtt: {{username: u, password_file: {pw_file}}}}}\n"
    )
    settings = load_settings(config)
    assert settings.dsn == SENTINEL_DSN
    assert settings.feeds[0].mqtt.password.get_secret_value() == SENTINEL
    _assert_clean(repr(settings), str(settings), settings.model_dump_json())
    out = run_cli("--config", str(config), "sql", "SELECT 1", cwd=tmp_path)
    assert out.returncode == 2
    _assert_clean(out.stdout, out.stderr)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("text", "setting"),
    [
        (f"warehouse_dsn: {SENTINEL_DSN}\n", "warehouse_dsn"),
        (f"backfill_dsn: {SENTINEL_DSN}\n", "backfill_dsn"),
        ("feeds:\n  - {name: plant, kind: mqtt, mqtt: {username: u, password: " + SENTINEL
         + "}}\n", "feeds.0.mqtt.password"),
    ],
)
def test_a_config_file_holding_a_password_is_refused(tmp_path, text, setting):
    # credentials come only from the environment or a secrets file
    (tmp_path / "feedhouse.yaml").write_text(text)
    out = run_cli("sql", "SELECT 1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: setting '{setting}': ") and "holds a password" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    _assert_clean(out.stdout, out.stderr)
    # the same DSN from the environment is taken (and fails only to connect)
    if setting == "warehouse_dsn":
        (tmp_path / "feedhouse.yaml").unlink()
        env = run_cli("sql", "SELECT 1", cwd=tmp_path, FEEDHOUSE_WAREHOUSE_DSN=SENTINEL_DSN)
        assert "holds a password" not in env.stderr and "cannot reach" in env.stderr
        _assert_clean(env.stdout, env.stderr)


@pytest.mark.integration
def test_audit_report_holds_no_secret(tmp_path):
    from feedhouse.store.migrations import init_schema

    pw = tmp_path / "mqtt_pw"
    pw.write_text(SENTINEL + "\n")
    config = tmp_path / "feedhouse.yaml"
    config.write_text(
        f"home: {tmp_path / 'fh'}\nreports_dir: {tmp_path / 'reports'}\n"
        "feeds:\n"
        f"  - {{name: sensors, kind: mqtt, mqtt: {{username: u, password_file: {pw}}}}}\n"
    )
    init_schema(load_settings(config))
    out = run_cli("--config", str(config), "report", cwd=tmp_path)
    files = list((tmp_path / "reports").rglob("*"))
    assert any(f.suffix == ".html" for f in files), out.stderr
    _assert_clean(
        out.stdout, out.stderr, *(f.read_text(errors="replace") for f in files if f.is_file())
    )


def test_exceptions_and_debug_logs_hold_no_password(caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FeedhouseError) as info:
        with connect(SENTINEL_DSN):
            pass
    exc = info.value
    _assert_clean(str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text)


def test_help_of_every_command_shows_no_secret(monkeypatch):
    import typer

    from feedhouse.app.cli.main import app

    monkeypatch.setenv("FEEDHOUSE_WAREHOUSE_DSN", SENTINEL_DSN)
    root = typer.main.get_command(app)

    def paths(command, prefix: list[str]):
        yield prefix
        for name, sub in getattr(command, "commands", {}).items():  # groups have commands
            yield from paths(sub, [*prefix, name])

    every = list(paths(root, []))
    assert ["sql"] in every and ["analytics"] in every
    runner = CliRunner()
    for path in every:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        _assert_clean(result.output)


# --- TLS settings ----------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "feedhouse test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "ca.crt", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _read_request(tls) -> bytes:
    """The whole HTTP request: answering before the body is read and closing would reset
    the connection, and the client could see that instead of the answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    chunked = re.search(rb"(?im)^transfer-encoding:\s*chunked", head)

    def complete() -> bool:
        if chunked:
            return body.endswith(b"0\r\n\r\n")
        return not match or len(body) >= int(match.group(1))

    while not complete():
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@pytest.fixture
def tls_endpoint(tmp_path):
    """A TLS listener on loopback answering every request 503: enough to see whether the
    warehouse client speaks TLS and verifies the certificate (the request itself fails)."""
    cert, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    requests.append(_read_request(tls))
                    tls.sendall(
                        b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n"
                    )
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], cert, requests
    server.close()
    thread.join(timeout=5)


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_https_dsn_speaks_tls_and_verifies_by_default(tls_endpoint):
    port, ca, requests = tls_endpoint
    # a random port: clickhouse-connect alone picks TLS from the port (443/8443), not https://
    dsn = f"https://u:{SENTINEL}@127.0.0.1:{port}/db"
    settings = load_settings(warehouse_dsn=dsn)
    assert settings.warehouse_verify is True
    with pytest.raises(FeedhouseError, match="certificate verif"):
        with warehouse(settings):
            pass
    assert requests == []  # nothing (no password) sent to an unverified server
    trusted = load_settings(warehouse_dsn=dsn, warehouse_ca_file=str(ca))
    with pytest.raises(FeedhouseError, match="503") as info:
        with warehouse(trusted):
            pass
    _assert_clean(str(info.value))
    assert requests and requests[0].startswith(b"POST /")  # arrived over TLS
    unverified = load_settings(warehouse_dsn=dsn, warehouse_verify=False)
    with pytest.raises(FeedhouseError, match="503"):
        with warehouse(unverified):
            pass


@pytest.mark.integration
def test_tls_settings_load_and_bad_files_stop_with_one_line(tmp_path):
    ca, key = _self_signed(tmp_path)
    config = tmp_path / "feedhouse.yaml"
    config.write_text(
        "warehouse_dsn: https://u@ch.example:8443/db\n"
        f"warehouse_ca_file: {ca}\n"
        "warehouse_verify: true\n"
        "feeds:\n"
        "  - name: sensors\n"
        "    kind: mqtt\n"
        f"    mqtt: {{host: broker, port: 8883, tls: true, ca_file: {ca},"
        f" client_cert: {ca}, client_key: {key}}}\n"
    )
    settings = load_settings(config)
    mqtt = settings.feeds[0].mqtt
    assert settings.warehouse_ca_file == ca and settings.warehouse_verify
    assert (mqtt.tls, mqtt.port, mqtt.ca_file, mqtt.client_cert, mqtt.client_key) == (
        True,
        8883,
        ca,
        ca,
        key,
    )

    bad = {
        "warehouse_ca_file": (
            {"warehouse_dsn": "https://h:8443/db", "warehouse_ca_file": str(tmp_path / "nope.crt")},
            "file not found",
        ),
        "settings": ({"warehouse_ca_file": str(ca)}, "needs an https://"),
        "feeds.0.mqtt.ca_file": (
            {
                "feeds": [
                    {
                        "name": "s",
                        "kind": "mqtt",
                        "mqtt": {"tls": True, "ca_file": str(tmp_path / "no-ca.crt")},
                    }
                ]
            },
            "file not found",
        ),
        "feeds.0.mqtt": (
            {
                "feeds": [
                    {"name": "s", "kind": "mqtt", "mqtt": {"tls": True, "client_cert": str(ca)}}
                ]
            },
            "client_cert and client_key go together",
        ),
    }
    for setting, (overrides, message) in bad.items():
        with pytest.raises(SettingsError) as info:
            load_settings(**overrides)
        text = str(info.value)
        assert text.startswith(f"setting '{setting}'") and message in text, text
        assert "\n" not in text

    out = run_cli(
        "sql",
        "SELECT 1",
        cwd=tmp_path,
        FEEDHOUSE_WAREHOUSE_DSN="https://u:pw@127.0.0.1:1/db",
        FEEDHOUSE_WAREHOUSE_CA_FILE=str(tmp_path / "missing-ca.pem"),
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"error: setting 'warehouse_ca_file': file not found: {tmp_path / 'missing-ca.pem'}"
    ]


# --- identifiers and values ------------------------------------------------------------

HOSTILE_NAMES = [
    "trades; DROP TABLE x",
    "`trades`",
    "trades`; DROP TABLE x; --",
    "'trades'",
    '"trades"',
    "trades--",
    "trades/*x*/",
    "market.trades.x",
    "market..trades",
    ".trades",
    "1trades",
    "tradés",
    "trades\u200b",  # zero-width space
    "ｔｒａｄｅｓ",  # full-width letters
    "trades\n",
    "trades x",
    "",
    "a" * 64,
    "{name:String}",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_identifiers_are_refused(name):
    with pytest.raises(SettingsError) as info:
        identifier(name, "setting 'table'")
    assert str(info.value).startswith("setting 'table': ")
    assert "\n" not in str(info.value)


def test_plain_identifiers_pass():
    for name in ("trades", "market.trades", "_x1", "ops.ingest_ledger", "a" * 63):
        assert identifier(name) == name
    assert table_name("iot", "readings") == "iot.readings"
    with pytest.raises(SettingsError):
        table_name("iot", "readings; DROP TABLE x")


HOSTILE_VALUES = [
    "x'); DROP TABLE market.trades; --",
    "\\' OR 1=1 --",
    '`backticks` and "quotes" and {feed:String}',
    "üñíçødé \u200b \x00 tab\t newline\n end",
]


def test_hostile_values_bound_as_parameters_are_stored_verbatim(initialized):
    with warehouse(initialized) as client:
        for i, value in enumerate(HOSTILE_VALUES):
            client.command(
                "INSERT INTO ops.dead_letter (feed, received_ts, raw, error) "
                "SELECT {feed:String}, now64(6), {raw:String}, {error:String}",
                parameters={"feed": f"feed{i}", "raw": value, "error": value[::-1]},
            )
        rows = client.query(
            "SELECT raw, error FROM ops.dead_letter WHERE feed LIKE {prefix:String} ORDER BY feed",
            parameters={"prefix": "feed%"},
        ).result_rows
        found = client.query(
            "SELECT count() FROM ops.dead_letter WHERE raw = {raw:String}",
            parameters={"raw": HOSTILE_VALUES[0]},
        ).result_rows[0][0]
        tables = client.query(
            "SELECT count() FROM system.tables WHERE database = 'market' AND name = 'trades'"
        ).result_rows[0][0]
    assert rows == [(v, v[::-1]) for v in HOSTILE_VALUES]
    assert found == 1 and tables == 1
