"""The production Mosquitto config (TLS listener, password file, no anonymous clients)
served by real Mosquitto, reached through the clients `MqttSettings` builds."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from dataflows.sources.mqtt_client import connect_args, make_client
from feedhouse.app.mqtt.broker import PROD_CONF, Broker
from feedhouse.core.settings import MqttSettings

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_broker(tmp_path: Path):
    certs = tmp_path / "certs"
    certs.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=feedhouse-test-ca", cwd=certs)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
             cwd=certs)
    (certs / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
             cwd=certs)
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "sensor", "s3cret-pw"],
                   check=True, capture_output=True)
    (tmp_path / "pw.txt").write_text("s3cret-pw\n")
    overrides = {"cafile": str(certs / "ca.crt"), "certfile": str(certs / "server.crt"),
                 "keyfile": str(certs / "server.key"), "password_file": str(passwd)}
    with Broker(tmp_path / "mosquitto", conf=PROD_CONF, overrides=overrides) as broker:
        yield broker, tmp_path


def _connack(settings: MqttSettings, wait_s: float = 5.0) -> mqtt.ReasonCode | str:
    """Connect once; the CONNACK reason, or the connection error's name."""
    got: list = []
    done = threading.Event()
    client = make_client(settings, "tls-probe", persistent=False)
    client.on_connect = lambda c, u, f, rc, p: (got.append(rc), done.set())
    try:
        client.connect(**connect_args(settings, persistent=False))
    except OSError as exc:
        return type(exc).__name__
    client.loop_start()
    done.wait(wait_s)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else "no CONNACK"


def test_prod_config_tls_and_password_round_trip(tls_broker):
    broker, folder = tls_broker
    settings = MqttSettings(port=broker.port, protocol="5", tls=True,
                            ca_file=folder / "certs" / "ca.crt", username="sensor",
                            password_file=folder / "pw.txt")
    received: list[bytes] = []
    sub = make_client(settings, "tls-sub", persistent=False)
    subscribed = threading.Event()
    sub.on_connect = lambda c, *_: c.subscribe("plant/#", 1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda c, u, m: received.append(m.payload)
    sub.connect(**connect_args(settings, persistent=False))
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        pub = make_client(settings, "tls-pub", persistent=False)
        pub.connect(**connect_args(settings, persistent=False))
        pub.loop_start()
        pub.publish("plant/s/d/temperature", b'{"seq":1}', qos=1).wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert received == [b'{"seq":1}']


def test_prod_config_refuses_wrong_password_anonymous_and_plain_tcp(tls_broker):
    broker, folder = tls_broker
    ca = folder / "certs" / "ca.crt"
    wrong = _connack(MqttSettings(port=broker.port, tls=True, ca_file=ca, username="sensor",
                                  password="nope"))
    anonymous = _connack(MqttSettings(port=broker.port, tls=True, ca_file=ca))
    assert isinstance(wrong, mqtt.ReasonCode) and wrong.is_failure
    assert isinstance(anonymous, mqtt.ReasonCode) and anonymous.is_failure
    plain = _connack(MqttSettings(port=broker.port, username="sensor", password="s3cret-pw"),
                     wait_s=1.5)
    assert plain == "no CONNACK"  # the TLS listener never answers a plain-TCP CONNECT
