"""Run Mosquitto with the shipped config on a free loopback port (tests, drills, demo).

The config is `docker/mosquitto/mosquitto.conf` with the listener port and the
persistence folder replaced. `stop()` ends the broker by its PID (SIGTERM: Mosquitto
writes its persistence file on the way out); `start()` again reuses the same port and
folder, so persistent sessions and queued messages survive a restart.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from feedhouse.core.errors import FeedhouseError
from feedhouse.core.paths import PROJECT_ROOT

SHIPPED_CONF = PROJECT_ROOT / "docker" / "mosquitto" / "mosquitto.conf"
PROD_CONF = PROJECT_ROOT / "docker" / "mosquitto" / "mosquitto.prod.conf"


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        raise FeedhouseError("mosquitto not found (install Debian's mosquitto package)")
    return found


def mosquitto_version(binary: str | None = None) -> tuple[int, ...] | None:
    """The broker's version from the first line of `mosquitto -h` ("mosquitto version
    2.0.11"); None when it cannot be run or the line does not say."""
    try:
        out = subprocess.run([binary or mosquitto_binary(), "-h"], capture_output=True,
                             text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, FeedhouseError):
        return None
    lines = (out.stdout or out.stderr).splitlines()
    found = re.search(r"version\s+(\d+(?:\.\d+)*)", lines[0]) if lines else None
    return tuple(int(n) for n in found.group(1).split(".")) if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_conf(port: int, data_dir: Path, shipped: Path = SHIPPED_CONF,
                overrides: dict[str, str] | None = None) -> str:
    """The shipped config on `port` (loopback) with its persistence in `data_dir`;
    `overrides` replace other directives' values (e.g. certificate paths)."""
    text = shipped.read_text()
    text, n = re.subn(r"(?m)^listener\s+\d+.*$", f"listener {port} 127.0.0.1", text)
    if n != 1:
        raise FeedhouseError(f"{shipped}: expected one 'listener' line")
    values = {"persistence_location": f"{data_dir}/", **(overrides or {})}
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{re.escape(key)}\s+.*$", f"{key} {value}", text)
        if n != 1:
            raise FeedhouseError(f"{shipped}: expected one {key!r} line")
    # As root Mosquitto drops to user 'mosquitto', which cannot write our folder.
    return text + f"\nuser {getpass.getuser()}\n"


class Broker:
    """One Mosquitto process: `start()`, `stop()`, `restart()`; also a context manager."""

    def __init__(self, work_dir: Path, port: int | None = None, conf: Path = SHIPPED_CONF,
                 overrides: dict[str, str] | None = None) -> None:
        self.shipped, self.overrides = conf, overrides
        self.work_dir = Path(work_dir)
        self.data_dir = self.work_dir / "data"
        self.port = port or free_port()
        self.conf = self.work_dir / "mosquitto.conf"
        self.log_path = self.work_dir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self, timeout: float = 10.0) -> Broker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render_conf(self.port, self.data_dir, self.shipped, self.overrides))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.conf)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FeedhouseError(f"mosquitto exited at start: see {self.log_path}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise FeedhouseError(f"mosquitto did not listen on port {self.port} within {timeout}s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class BrokerStats:
    """Reads Mosquitto's `$SYS` counters (retained; updated every `sys_interval` s).

    `held` = messages in the store that are not retained ones: queued for or in flight to
    a subscriber that has not acknowledged them (or publishes not yet complete). The
    source acknowledges only committed batches, so 0 there means the pipeline drained.
    Every read is a fresh subscription: a long-lived one was seen to keep a stale count
    after a broker restart (Mosquitto publishes a `$SYS` value only when it changes).
    """

    TOPICS = {
        "$SYS/broker/store/messages/count": "stored",
        "$SYS/broker/retained messages/count": "retained",
        "$SYS/broker/shared_subscriptions/count": "shared_subscriptions",
        "$SYS/broker/subscriptions/count": "subscriptions",
        "$SYS/broker/clients/connected": "clients",
    }

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port

    def read(self, timeout: float = 3.0) -> dict[str, int]:
        """Current values by short name, plus `held` (empty if the broker is down)."""
        import paho.mqtt.client as mqtt

        values: dict[str, int] = {}
        done = threading.Event()

        def on_message(client, userdata, message) -> None:
            try:
                values[self.TOPICS[message.topic]] = int(message.payload)
            except ValueError:
                pass
            if len(values) == len(self.TOPICS):
                done.set()

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.on_connect = lambda c, *_: c.subscribe([(t, 0) for t in self.TOPICS])
        client.on_message = on_message
        try:
            client.connect(self.host, self.port, keepalive=10)
        except OSError:
            return {}
        client.loop_start()
        done.wait(timeout)
        client.disconnect()
        client.loop_stop()
        if "stored" in values and "retained" in values:
            values["held"] = values["stored"] - values["retained"]
        return values

    def wait_drained(self, stall_s: float, settle_s: float = 3.0) -> bool:
        """Wait until the broker holds no message, as long as `held` keeps falling: a
        backlog (publishers faster than the pipeline) drains at the pipeline's pace, so
        only `stall_s` seconds without a new low give up."""
        lowest: int | None = None
        while True:
            if self.wait("held", lambda n: n == 0, stall_s, settle_s):
                return True
            held = self.read().get("held")
            if held is None or (lowest is not None and held >= lowest):
                return False
            lowest = held

    def wait(self, name: str, ok, timeout: float, settle_s: float = 2.5) -> bool:
        """Wait until `ok(value of name)` has held for `settle_s` seconds."""
        deadline = time.monotonic() + timeout
        ok_since: float | None = None
        while time.monotonic() < deadline:
            value = self.read().get(name)
            now = time.monotonic()
            if value is not None and ok(value):
                ok_since = ok_since or now
                if now - ok_since >= settle_s:
                    return True
            else:
                ok_since = None
            time.sleep(0.5)
        return False
