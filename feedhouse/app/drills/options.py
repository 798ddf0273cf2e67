"""Command-line options several drills share (typer), declared once.

Use as a parameter's default: `store: Path | None = STORE_OPTION`.
"""

from __future__ import annotations

import typer

STORE_HELP = ("the chDB store to create (new or empty; default: a new temporary folder); "
              "kept, with the drill's own files in its drill/ folder")

STORE_OPTION = typer.Option(None, "--store", help=STORE_HELP)
RATE_OPTION = typer.Option(0, "--rate", min=0, help="trades/s to send (0: as fast as read)")
DUP_OPTION = typer.Option(0.02, "--dup", min=0, max=0.5, help="fraction of frames repeated")


def seconds_option(default: float, least: float = 2):
    """`--seconds`: how long the session server sends."""
    return typer.Option(default, "--seconds", min=least, help="how long the server sends")
