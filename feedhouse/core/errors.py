"""Errors a user sees as one line (the CLI prints the message and exits 2)."""


class FeedhouseError(Exception):
    """An error whose message is meant for the user, printed without a traceback."""

    exit_code = 1


class SettingsError(FeedhouseError):
    """A setting is missing or wrong; the message names the setting."""

    exit_code = 2


class WarehouseBusy(FeedhouseError):
    """Another process holds the embedded store longer than the lock timeout."""


class WarehouseNested(FeedhouseError):
    """Code tried to open the embedded store while already holding it in this thread."""


class WarehouseUnavailable(FeedhouseError):
    """ClickHouse cannot be reached (or the fault injector says so)."""


class WarehouseConfigError(WarehouseUnavailable):
    """The configured warehouse cannot be used at all (unreachable at start, bad password).

    `permanent`: retrying cannot help (wrong password, unknown host name), so even
    `feedhouse run`, which buffers through a ClickHouse that is down, stops at once."""

    exit_code = 2

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class InputError(FeedhouseError):
    """An input file or argument cannot be used (unreadable file, unknown venue)."""

    exit_code = 2


class QueryError(FeedhouseError):
    """The user's own SQL (`feedhouse sql`, an analytics query) was refused by ClickHouse;
    the message is the engine's, without the client's internals."""

    exit_code = 2
