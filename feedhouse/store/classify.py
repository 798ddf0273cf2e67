"""What a warehouse error means for the caller: retry (then buffer) or give up."""

from __future__ import annotations

import enum
import re

from clickhouse_connect.driver.exceptions import OperationalError

from feedhouse.core.errors import WarehouseBusy, WarehouseConfigError, WarehouseUnavailable


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
