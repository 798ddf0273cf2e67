"""Entry point of the `feedhouse` command: global options, command discovery, error policy.

Errors meant for the user (FeedhouseError) print one line on stderr, no traceback, and
exit with their code (2 for settings).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from pathlib import Path

import typer

import feedhouse
from feedhouse.app.cli._help import FeedhouseGroup
from feedhouse.core.errors import FeedhouseError


def _usage_error_classes() -> tuple[type[Exception], ...]:
    """The ClickException class(es) the parser may raise.

    Recent typer (0.29 here) bundles its own copy of click (typer._click) whose exceptions are not
    the installed click's, so `import click` would never match them. Find the class through
    typer's public BadParameter instead (a ClickException subclass in every typer), and
    keep the installed click's class too in case a library raises that one.
    """
    classes = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    try:
        import click
    except ImportError:  # pragma: no cover - typer no longer needs click installed
        pass
    else:
        if click.ClickException not in classes:
            classes.append(click.ClickException)
    return tuple(classes)


_USAGE_ERRORS = _usage_error_classes()

app = typer.Typer(
    name="feedhouse",
    cls=FeedhouseGroup,
    help="Market-data and IoT ingestion into ClickHouse that you can prove.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"feedhouse {feedhouse.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", help="settings file (default: ./feedhouse.yaml when present)"
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    ctx.obj = {"config": config}


def _register_commands() -> None:
    package = importlib.import_module("feedhouse.app.cli")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name in ("main", "context") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"feedhouse.app.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    # clickhouse-connect logs driver exceptions itself; we report them in one line.
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    # urllib3 warns about each connection retry; the one-line error already says it all
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except FeedhouseError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except _USAGE_ERRORS as exc:  # usage errors: click's own message, its exit code (2)
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
