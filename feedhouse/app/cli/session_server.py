"""`feedhouse session-server`: serve recorded sessions over WebSocket on loopback.

(`replay-server` is its old name, kept as a hidden alias for scripts.)
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from feedhouse.app.session_server.server import SessionServer
from feedhouse.app.sessions import SESSIONS_DIR
from feedhouse.core.errors import InputError


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def session_server(
    captures: Path = typer.Option(
        SESSIONS_DIR, "--captures", help="folder of capture files (default: the shipped sessions)"
    ),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(0, help="port (0: a free port, printed)"),
    speed: str = typer.Option("1", help="recorded pace x this factor, or 'max'"),
    loop: bool = typer.Option(False, "--loop", help="repeat sessions with new trade ids"),
    faults: str | None = typer.Option(
        None, help="e.g. 'drop=5s,dup=0.01,corrupt=0.001'"
    ),
    stats_file: Path | None = typer.Option(
        None, "--stats-file", help="write the per-path counters here (JSON, every second)"
    ),
    now: bool = typer.Option(
        False, "--now", help="with --loop: shift event times so the sessions look live"
    ),
) -> None:
    """Serve each capture at ws://HOST:PORT/<file name> until interrupted."""

    try:
        server = SessionServer(
            captures, speed, loop, faults, host=host, port=port, stats_file=stats_file,
            rebase_now=now,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    try:
        bound = server.start()
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    pace = "max" if server.speed is None else f"x{server.speed:g}"
    typer.echo(
        f"session server on ws://{host}:{bound} (speed {pace}, loop {'on' if loop else 'off'}, "
        f"faults {server.faults})",
    )
    for name, stream in server.streams.items():
        venue = stream.venue.name if stream.venue else "unknown venue"
        typer.echo(f"  {server.url(name)}  {venue}, {len(stream)} frames")
    typer.echo(f"port {bound}", nl=True)
    signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly: final stats file written
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command("session-server")(session_server)
    app.command("replay-server", hidden=True)(session_server)
