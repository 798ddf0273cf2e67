"""The README stays true: every setting has a row (env name, scalar default), and every
command and option its command table lists exists."""

from __future__ import annotations

import re
import typing

import pytest
import typer.main
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from feedhouse.app.cli.main import app
from feedhouse.core.settings import ENV_PREFIX, Settings
from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _table_rows(text: str) -> list[list[str]]:
    rows = [
        [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        for line in text.splitlines()
        if line.startswith("| `")
    ]
    return rows


def _model_of(annotation) -> tuple[type[BaseModel] | None, bool]:
    """(the settings model inside `annotation`, whether it is a list of them)."""
    args = typing.get_args(annotation) or (annotation,)
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg, typing.get_origin(annotation) is list
    return None, False


def _settings(model: type[BaseModel], path: str, env: str | None):
    """(dotted path, env name or None, default) of every leaf setting; a list of models
    (`feeds`) has a row of its own and its fields as `feeds[].x`, set in YAML only."""
    for name, field in model.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        here, env_here = path + name, (env + name.upper()) if env is not None else None
        sub, is_list = _model_of(field.annotation)
        if sub is None:
            yield here, env_here, default
        elif is_list:
            yield here, env_here, default
            yield from _settings(sub, here + "[].", None)
        else:
            yield from _settings(sub, here + ".", env_here + "__" if env_here else None)


def _shown(value) -> str | None:
    """How the README writes a scalar default (None: not checked)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int | str):
        return str(value)
    return None


def test_every_setting_has_a_row_with_env_name_and_default() -> None:
    rows = {r[0].strip("`"): r for r in _table_rows(_section("Settings"))}
    expected = list(_settings(Settings, "", ENV_PREFIX))
    assert len(expected) > 60
    missing = [path for path, _, _ in expected if path not in rows]
    assert not missing, f"settings without a README row: {missing}"
    extra = sorted(set(rows) - {path for path, _, _ in expected})
    assert not extra, f"README rows naming no setting: {extra}"
    for path, env, default in expected:
        _, env_cell, default_cell, meaning = rows[path]
        assert env_cell == (f"`{env}`" if env else "—"), path
        assert meaning, path
        if default is PydanticUndefined:
            assert default_cell == "required", path
        elif (shown := _shown(default)) is not None:
            assert f"`{shown}`" in default_cell, (path, shown, default_cell)


def _command(path: list[str]):
    command = typer.main.get_command(app)
    for name in path:
        assert hasattr(command, "commands"), path  # a group
        assert name in command.commands, f"README lists `feedhouse {' '.join(path)}`"
        command = command.commands[name]
    return command


def _listed_commands():
    for cell in (r[0] for r in _table_rows(_section("Commands"))):
        for usage in re.findall(r"`(feedhouse [^`]*)`", cell):
            words = usage.split()[1:]
            path = []
            group = typer.main.get_command(app)
            while words and words[0] in getattr(group, "commands", {}):
                path.append(words[0])
                group = group.commands[words.pop(0)]
            yield usage, path, re.findall(r"(?<![\w-])--[a-z][a-z-]*", usage)


@pytest.mark.parametrize("usage, path, options", list(_listed_commands()))
def test_listed_command_and_options_exist(usage: str, path: list[str], options: list) -> None:
    assert path, f"README lists {usage!r}, which names no command"
    command = _command(path)
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [o for o in options if o not in known]
    assert not unknown, f"{usage!r}: no such option {unknown}"


def test_every_command_is_listed() -> None:
    listed = {tuple(path[:1]) for _, path, _ in _listed_commands()}
    commands = set(typer.main.get_command(app).commands)
    assert {c for c in commands if (c,) not in listed} == set()
