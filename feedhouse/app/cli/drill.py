"""`feedhouse drill NAME`: fault drills, discovered from the modules of feedhouse.app.drills."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from feedhouse.app import drills

drill_app = typer.Typer(help="Run a fault drill; the last stdout line is its JSON verdict.")


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(drills.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"feedhouse.app.drills.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(drill_app)


_discover()


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")
