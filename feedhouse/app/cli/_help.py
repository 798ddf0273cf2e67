"""`feedhouse --help` that reads well: commands grouped in panels, readable placeholders.

Typer 0.29 shows every option's Python type as its placeholder (`<bool>` beside a flag,
`<list[str]>`, `<float range> [x>=0.1]`) and lists commands in the order modules were
discovered. The root group here names each value by what it is (`N`, `X`, `TEXT`,
`PATH`, `a|b`), writes a bound as `X ≥ 0.1`, shows nothing beside a flag, and sorts the
commands into the panels ingest, verify, explore, operate and test tools.
"""

from __future__ import annotations

import re
from typing import Any

import typer.core

# command -> panel; panels print in this order, commands in this order within them
PANELS: dict[str, tuple[str, ...]] = {
    "Ingest": ("run", "backfill", "capture"),
    "Verify": ("audit", "reconcile", "candles", "check", "report"),
    "Explore": ("demo", "sql", "analytics"),
    "Operate": ("init", "drain"),
    "Test tools": ("drill", "session-server", "mqtt-load"),
}
ORDER = [name for names in PANELS.values() for name in names]
PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}


def _number(value: float) -> str:
    return f"{value:g}"


def _bounds(param: Any) -> str:
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f" ({_number(low)}–{_number(high)})"
    if low is not None:
        return f" ≥ {_number(low)}"
    if high is not None:
        return f" ≤ {_number(high)}"
    return ""


def placeholder(param: Any) -> str:
    """What a user types for `param`: N, X, TEXT, PATH, a|b|c; '' for a flag."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    desc = param.type_descriptor
    if desc.is_choice:
        label = "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    elif desc.is_path:
        label = "PATH"
    else:
        kind = desc.ranged_type_name if desc.is_ranged else param.bare_type()
        kind = kind.removeprefix("list[").removesuffix("]")
        label = {"int": "N", "float": "X", "str": "TEXT", "Path": "PATH"}.get(kind, kind.upper())
    if desc.is_list:
        label += " (repeatable)"
    return label + _bounds(param)


def _tidy_param(param: Any) -> None:
    if not isinstance(param, typer.core.TyperOption | typer.core.TyperArgument):
        return
    if isinstance(param, typer.core.TyperOption) and param.metavar is None:
        param.metavar = placeholder(param)
    elif isinstance(param, typer.core.TyperArgument) and param.metavar is None:
        label = placeholder(param)
        param.display_type_rich = lambda ctx: label
    param._get_number_range_help_str = lambda: None  # the bound is in the placeholder


def _one_paragraph_lines(text: str | None) -> str | None:
    """Docstring line breaks inside a paragraph become spaces (Rich kept them)."""
    if not text:
        return text
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text)


def _tidy_command(command: Any) -> None:
    command.help = _one_paragraph_lines(command.help)
    for param in command.params:
        _tidy_param(param)
    make_help = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make_help(ctx)
        if option is not None:
            _tidy_param(option)
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        _tidy_command(sub)


class FeedhouseGroup(typer.core.TyperGroup):
    """The root command: panels, order and placeholders (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, command in self.commands.items():
            command.rich_help_panel = PANEL_OF.get(name, "Other")
        _tidy_command(self)

    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: i for i, name in enumerate(ORDER)}
        return sorted(super().list_commands(ctx), key=lambda n: (rank.get(n, len(rank)), n))
