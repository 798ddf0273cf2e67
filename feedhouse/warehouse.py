"""The one way to reach ClickHouse: `with warehouse(settings) as client: ...`.

Embedded (`chdb:///abs/dir`): chDB lets one process open a store directory at a time, so
every use opens the store, does its work and closes it, holding an inter-process
`fcntl.flock` on `<dir>.lock` meanwhile. Holding it twice in one thread would deadlock,
so that raises WarehouseNested. Other threads of the same process queue on an in-process
lock first (flock does not order threads of one process reliably).

Server (`http(s)://user:password@host:8123/db`): one pooled client per DSN, kept open.

A fault injector (drills and tests) can make the warehouse unreachable or slow: it reads
a small JSON file named by the `fault_file` setting, e.g. {"outage": true, "latency_ms": 50}
(every use of the warehouse), or {"row_latency_us": 1000} (each insert, per row: a store
that takes rows slower than offered, however they are batched).
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from feedhouse.errors import (
    WarehouseBusy,
    WarehouseConfigError,
    WarehouseNested,
    WarehouseUnavailable,
)

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from feedhouse.settings import Settings

_process_lock = threading.Lock()
_held = threading.local()
_http_clients: dict[tuple[str, str | None, bool], Client] = {}
_http_lock = threading.Lock()


def normalize_dsn(dsn: str) -> str:
    """Check a DSN and make chDB paths absolute. Raises ValueError naming the problem."""
    dsn = dsn.strip()
    if dsn.startswith("chdb:"):
        rest = dsn[len("chdb:") :]
        if rest.startswith("///"):
            path = rest[2:]
        elif rest.startswith("//"):
            # `chdb://relative` would be parsed as a host: resolve it as a path instead.
            path = str(Path(rest[2:]).expanduser().resolve())
        else:
            path = str(Path(rest).expanduser().resolve())
        if not path or path == "/":
            raise ValueError("chdb DSN needs a directory: chdb:///abs/dir")
        return f"chdb://{path}"
    parts = urlsplit(dsn)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with chdb:///, http:// or https://")
    if not parts.hostname:
        raise ValueError("has no host")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return dsn


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe for logs and messages.

    Everything up to the last '@' goes, so an unencoded '@' or '/' in the password cannot
    leave a piece of it behind; a `password=` query parameter is masked too."""
    dsn = re.sub(r"(://[^:/@]+:).*@", r"\1***@", dsn)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", dsn, flags=re.IGNORECASE)


def chdb_path(dsn: str) -> Path | None:
    return Path(dsn[len("chdb://") :]) if dsn.startswith("chdb://") else None


# --- fault injector ---------------------------------------------------------------------


def read_faults(fault_file: Path | None) -> dict[str, Any]:
    if fault_file is None:
        return {}
    try:
        return json.loads(Path(fault_file).read_text() or "{}")
    except (FileNotFoundError, ValueError):
        return {}


def write_faults(fault_file: Path, **faults: Any) -> None:
    """Switch faults on or off (atomically) for every process that shares the file."""
    tmp = Path(f"{fault_file}.tmp")
    tmp.write_text(json.dumps(faults))
    os.replace(tmp, fault_file)


def _apply_faults(fault_file: Path | None) -> None:
    faults = read_faults(fault_file)
    if faults.get("outage"):
        raise WarehouseUnavailable("ClickHouse unreachable (fault injector: outage)")
    latency = float(faults.get("latency_ms", 0) or 0)
    if latency > 0:
        time.sleep(latency / 1000.0)


def apply_row_faults(fault_file: Path | None, rows: int) -> None:
    """The fault injector's per-row insert delay (`row_latency_us`), if any."""
    per_row_us = float(read_faults(fault_file).get("row_latency_us", 0) or 0)
    if per_row_us > 0:
        time.sleep(per_row_us * rows / 1e6)


# --- embedded store lock ----------------------------------------------------------------


def _lock_holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def store_lock(store: Path, timeout_s: float) -> Iterator[None]:
    """Hold the store's inter-process lock; raise WarehouseBusy after timeout_s."""
    if getattr(_held, "depth", 0):
        raise WarehouseNested(
            f"the chDB store {store} is already open in this thread; "
            "close it before opening it again"
        )
    deadline = time.monotonic() + timeout_s
    if not _process_lock.acquire(blocking=False):
        want_file(store).touch()  # another thread holds it: ask it to let go
        acquired = _process_lock.acquire(timeout=timeout_s)
    else:
        acquired = True
    if not acquired:
        raise WarehouseBusy(
            f"chDB store {store} busy: another thread of this process held it {timeout_s:g}s"
        )
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        lock_path = Path(f"{store}.lock")
        want_path = want_file(store)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            delay = 0.002
            waited = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if waited:
                        want_path.unlink(missing_ok=True)
                    break
                except BlockingIOError:
                    # Tell a long-running holder (HeldWarehouse) that someone waits.
                    waited = True
                    if not want_path.exists():
                        want_path.touch()
                    if time.monotonic() >= deadline:
                        want_path.unlink(missing_ok=True)
                        holder = _lock_holder(lock_path)
                        raise WarehouseBusy(
                            f"chDB store {store} busy for {timeout_s:g}s: held by {holder} "
                            f"(lock file {lock_path})"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.02)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} ({_process_name()})".encode(), 0)
            _held.depth = 1
            try:
                yield
            finally:
                _held.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        _process_lock.release()


def want_file(store: Path) -> Path:
    """Exists while some process waits for the store: holders should let go soon."""
    return Path(f"{store}.want")


def _process_name() -> str:
    try:
        raw = Path(f"/proc/{os.getpid()}/cmdline").read_bytes()
        return " ".join(p.decode(errors="replace") for p in raw.split(b"\0")[:3] if p)
    except OSError:
        return "?"


# --- clients ----------------------------------------------------------------------------


@contextmanager
def connect(
    dsn: str,
    *,
    lock_timeout_s: float = 30.0,
    ca_file: Path | None = None,
    verify: bool = True,
    fault_file: Path | None = None,
) -> Iterator[Client]:
    """A clickhouse-connect client for `dsn`, for the duration of the block."""
    import clickhouse_connect

    _apply_faults(fault_file)
    store = chdb_path(dsn)
    if store is not None:
        with store_lock(store, lock_timeout_s):
            client = clickhouse_connect.get_client(dsn=dsn)
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
        _apply_faults(self.settings.fault_file)
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


# --- error classes ----------------------------------------------------------------------


class ErrorClass(enum.Enum):
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


# ClickHouse error codes worth retrying: the server is overloaded, restarting or the
# network failed; the same statement can succeed later.
RETRYABLE_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (replica restarting)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)
_CODE = re.compile(r"Code:\s*(\d+)")


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def classify_error(exc: BaseException) -> ErrorClass:
    """Retryable (try again later, then buffer) or permanent (dead-letter the records)."""
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, WarehouseConfigError) and exc.permanent:
        return ErrorClass.PERMANENT  # wrong password or host name: waiting will not help
    if isinstance(exc, WarehouseUnavailable | WarehouseBusy | ConnectionError | TimeoutError):
        return ErrorClass.RETRYABLE
    if isinstance(exc, OperationalError):  # network-level failure in clickhouse-connect
        return ErrorClass.RETRYABLE
    code = error_code(exc)
    if code is not None:
        return ErrorClass.RETRYABLE if code in RETRYABLE_CODES else ErrorClass.PERMANENT
    if isinstance(exc, OSError):
        return ErrorClass.RETRYABLE
    return ErrorClass.PERMANENT


def first_line(exc: BaseException) -> str:
    """ClickHouse's message in one line (no stack trace, no FORMAT suffix noise)."""
    text = str(exc).strip() or type(exc).__name__
    line = " ".join(text.split())
    line = re.sub(r"\s*Stack trace.*$", "", line)
    return line[:500]
