"""The one way to reach ClickHouse: `with warehouse(settings) as client: ...`.

Embedded (`chdb:///abs/dir`): chDB lets one process open a store directory at a time, so
every use opens the store, does its work and closes it, holding an inter-process
`fcntl.flock` on `<dir>.lock` meanwhile. Holding it twice in one thread would deadlock,
so that raises WarehouseNested. Other threads of the same process queue on an in-process
lock first (flock does not order threads of one process reliably).

Server (`http(s)://user:password@host:8123/db`): one pooled client per DSN, kept open.

The fault injector (`feedhouse.store.faults`) is applied on every use.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import clickhouse_connect

from feedhouse.core.dsn import chdb_path, redact_dsn
from feedhouse.core.errors import WarehouseConfigError
from feedhouse.store.faults import apply_faults
from feedhouse.store.lock import store_lock, want_file

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from feedhouse.core.settings import Settings

_http_clients: dict[tuple[str, str | None, bool], Client] = {}
_http_lock = threading.Lock()


@contextmanager
def connect(
    dsn: str,
    *,
    lock_timeout_s: float = 30.0,
    ca_file: Path | None = None,
    verify: bool = True,
    fault_file: Path | None = None,
    chdb_options: dict[str, Any] | None = None,
    jemalloc_conf: str = "",
) -> Iterator[Client]:
    """A clickhouse-connect client for `dsn`, for the duration of the block. An embedded
    store takes `chdb_options` (server settings: cache sizes, memory limit) as the engine's
    startup arguments; they apply when the engine starts in this process. `jemalloc_conf`
    configures the engine's allocator (`configure_jemalloc`)."""
    apply_faults(fault_file)
    store = chdb_path(dsn)
    if store is not None:
        configure_jemalloc(jemalloc_conf)
        with store_lock(store, lock_timeout_s):
            client = clickhouse_connect.get_client(dsn=dsn, chdb_options=chdb_options or None)
            try:
                yield client
            finally:
                client.close()
        return
    key = (dsn, str(ca_file) if ca_file else None, verify)
    with _http_lock:
        client = _http_clients.get(key)
        if client is None:
            # clickhouse-connect takes TLS from `interface`/port, not the DSN scheme: say it,
            # or https://host:9443 would send the password in clear text.
            interface = "https" if dsn.startswith("https://") else "http"
            kwargs: dict[str, Any] = {"dsn": dsn, "verify": verify, "interface": interface}
            if ca_file is not None:
                kwargs["ca_cert"] = str(ca_file)
            try:
                client = clickhouse_connect.get_client(**kwargs)
            except Exception as exc:
                raise _connect_error(dsn, exc) from None
            _http_clients[key] = client
    yield client


def configure_jemalloc(conf: str) -> bool:
    """Options for chDB's own jemalloc, which reads them from `JE_MALLOC_CONF` (its
    build prefixes the variable; plain `MALLOC_CONF` is ignored) once, when the library
    loads: so only before this process first imports chdb, and never over a value the
    environment already sets. True when set."""
    if not conf or "chdb" in sys.modules or "JE_MALLOC_CONF" in os.environ:
        return False
    os.environ["JE_MALLOC_CONF"] = conf
    return True


def _connect_error(dsn: str, exc: Exception) -> Exception:
    text = " ".join(str(exc).replace(dsn, redact_dsn(dsn)).split()) or type(exc).__name__
    where = redact_dsn(dsn)
    if "Authentication failed" in text or "Code: 516" in text:
        return WarehouseConfigError(
            f"setting 'warehouse_dsn': authentication failed at {where}", permanent=True
        )
    if "Name or service not known" in text:  # NXDOMAIN: a wrong name, not a hiccup
        return WarehouseConfigError(
            f"setting 'warehouse_dsn': cannot reach ClickHouse at {where} (unknown host)",
            permanent=True,
        )
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Temporary failure in name resolution", "unknown host"),
        ("timed out", "timed out"),
        ("CERTIFICATE_VERIFY_FAILED", "certificate verification failed"),
    ):
        if needle in text:
            return WarehouseConfigError(
                f"setting 'warehouse_dsn': cannot reach ClickHouse at {where} ({reason})"
            )
    return WarehouseConfigError(
        f"setting 'warehouse_dsn': cannot reach ClickHouse at {where} ({text[:160]})"
    )


@contextmanager
def warehouse(settings: Settings, *, lock_timeout_s: float | None = None) -> Iterator[Client]:
    """`connect()` with everything taken from settings."""
    with connect(
        settings.dsn,
        lock_timeout_s=lock_timeout_s or settings.warehouse_lock_timeout_s,
        ca_file=settings.warehouse_ca_file,
        verify=settings.warehouse_verify,
        fault_file=settings.fault_file,
        chdb_options=settings.embedded_store.chdb_options(),
        jemalloc_conf=settings.embedded_store.jemalloc_conf,
    ) as client:
        yield client


class HeldWarehouse:
    """Keeps the warehouse open across many short uses (the ingest sink's flushes).

    For an embedded store it closes as soon as another process waits (the `.want` file
    exists) or after `max_hold_s`, so `feedhouse sql` or a Dagster run gets the store
    within one flush. Server DSNs just reuse the pooled client. Not for nesting: call
    `release()` before anything else in this thread opens the warehouse.
    """

    def __init__(self, settings: Settings, max_hold_s: float = 1.0) -> None:
        self.settings = settings
        self.max_hold_s = max_hold_s
        self._cm = None
        self._client: Client | None = None
        self._opened_at = 0.0
        store = chdb_path(settings.dsn)
        self._want = want_file(store) if store is not None else None

    def client(self) -> Client:
        """The open client (opening it if needed). Faults are applied on every call."""
        apply_faults(self.settings.fault_file)
        if self._client is None:
            self._cm = warehouse(self.settings)
            self._client = self._cm.__enter__()
            self._opened_at = time.monotonic()
        return self._client

    def release_if_wanted(self) -> None:
        if self._client is None or self._want is None:
            return
        held = time.monotonic() - self._opened_at
        if held >= self.max_hold_s or self._want.exists():
            self.release()

    def release(self, error: BaseException | None = None) -> None:
        if self._cm is not None:
            cm, self._cm, self._client = self._cm, None, None
            if error is None:
                cm.__exit__(None, None, None)
            else:
                cm.__exit__(type(error), error, error.__traceback__)
