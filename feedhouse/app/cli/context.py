"""Shared helpers for CLI commands: settings from the global --config, rich console."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from feedhouse.core.config import load_settings
from feedhouse.core.settings import Settings

console = Console()
err_console = Console(stderr=True)


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Load settings once per command (raises SettingsError: one line, exit 2)."""
    root = ctx.find_root()
    obj = root.obj or {}
    return load_settings(obj.get("config"), **overrides)
