"""docs/mosquitto.conf runs as docs/mosquitto.md says: copied into a folder of one's own,
the port line edited, started there; it keeps a QoS 1 message across a restart in that
folder, with no 'Permission denied' (the shipped docker config hard-codes /var/lib)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

from feedhouse.app.mqtt.broker import free_port, mosquitto_binary
from tests.support.paths import ROOT

pytestmark = pytest.mark.integration  # starts processes, a broker or a browser

CONF = ROOT / "docs" / "mosquitto.conf"


def _start(folder) -> subprocess.Popen:
    proc = subprocess.Popen([mosquitto_binary(), "-c", "mosquitto.conf"], cwd=folder,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)
    assert proc.poll() is None, proc.stderr.read()
    return proc


def _stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    return err


def _client(port: int, client_id: str, clean: bool) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_user_config_runs_from_its_own_folder_and_persists_there(tmp_path):
    text = CONF.read_text()
    assert "/var/lib" not in text and len(re.findall(r"(?m)^listener ", text)) == 1
    folder = tmp_path / "broker"
    (folder / "data").mkdir(parents=True)  # mkdir -p ~/broker/data
    shutil.copy(CONF, folder / "mosquitto.conf")
    port = free_port()
    conf = (folder / "mosquitto.conf").read_text()
    conf = conf.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")  # the edit
    if os.geteuid() == 0:  # as the file says for root
        conf = conf.replace("# user root", "user root")
    (folder / "mosquitto.conf").write_text(conf)

    broker = _start(folder)
    try:
        sub = _client(port, "feedhouse-0", clean=False)  # a persistent session, like the feed's
        sub.subscribe("plant/+/+/+", qos=1)
        time.sleep(0.3)
        sub.disconnect()
        sub.loop_stop()
        pub = _client(port, "pub", clean=True)
        pub.publish("plant/site0/dev1/temperature", b'{"value": 21.5, "seq": 1}', qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
    finally:
        first = _stop(broker)
    assert (folder / "data" / "mosquitto.db").is_file()

    broker = _start(folder)  # restart: the queued message comes back from data/
    got: list[bytes] = []
    try:
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="feedhouse-0",
                          clean_session=False)
        sub.on_message = lambda c, u, m: got.append(m.payload)
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.1)
        sub.disconnect()
        sub.loop_stop()
    finally:
        second = _stop(broker)
    assert got == [b'{"value": 21.5, "seq": 1}']
    for log in (first, second):
        assert "Permission denied" not in log and "Error" not in log, log
