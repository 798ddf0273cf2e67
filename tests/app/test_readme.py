"""The README and docs/ stay true.

- README.md is the front door: at most 200 lines, its example feedhouse.yaml loads as
  settings, its venue table is the venue registry with each venue's channels.
- docs/user-guide.md has a row for every setting (env name, scalar default) and for
  every command with options that exist.
- Every `feedhouse ...` command shown anywhere in README.md or docs/*.md exists with the
  options shown; every FEEDHOUSE_* variable and dotted setting named exists; every
  relative link points at a file that exists; every `make X` is a Makefile target.
"""

from __future__ import annotations

import re
import typing

import pytest
import typer.main
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from dataflows.venues import VENUES
from feedhouse.app.cli.main import app
from feedhouse.core.config import load_settings
from feedhouse.core.settings import ENV_PREFIX, Settings
from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text()
DOCS = {p.relative_to(ROOT).as_posix(): p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
PAGES = {"README.md": README, **DOCS}
GUIDE = DOCS["docs/user-guide.md"]

# Written by other engineers in parallel (issue 20 links them); drop each name once its
# branch is merged, so the checks below cover it.
PENDING_FILES: set[str] = set()
PENDING_MAKE: set[str] = set()
PENDING_VENUES: set[str] = set()
# Variables read outside the settings model (config file, Dagster's resource choice).
OTHER_ENV = {"FEEDHOUSE_CONFIG", "FEEDHOUSE_ENV"}


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        for line in text.splitlines()
        if line.startswith("| `")
    ]


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


SETTINGS = list(_settings(Settings, "", ENV_PREFIX))


def _shown(value) -> str | None:
    """How the docs write a scalar default (None: not checked)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int | str):
        return str(value)
    return None


# --- the front door -----------------------------------------------------------------------


def test_readme_is_a_front_door():
    lines = README.splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    headings = re.findall(r"(?m)^## (.+)$", README)
    for needed in ("What the demo proves", "Quickstart: real exchanges",
                   "Quickstart: a ClickHouse server", "Quickstart: your own Mosquitto",
                   "Architecture", "Documentation"):
        assert needed in headings, needed
    assert README.index("make demo") < README.index("\n## ")  # the two commands first
    assert README.index("make test") < README.index("\n## ")


def test_readme_feedhouse_yaml_is_valid_settings(tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", _section(README, "Quickstart: real exchanges"), re.S)
    assert len(blocks) == 1
    data = yaml.safe_load(blocks[0])
    settings = load_settings(home=str(tmp_path), **data)  # raises SettingsError when wrong
    venues = {f.venue for f in settings.feeds if f.kind == "exchange"}
    assert len(venues) >= 3 and any(f.kind == "mqtt" for f in settings.feeds)
    assert any("quotes" in f.channels for f in settings.feeds)


def test_readme_venue_table_is_the_registry():
    rows = {r[0].strip("`"): r for r in _table_rows(_section(README, "Quickstart: real exchanges"))
            if len(r) == 3}
    assert set(VENUES) - set(rows) == set(), "venues missing from the README's table"
    assert set(rows) - set(VENUES) <= PENDING_VENUES, "README names venues that do not exist"
    for name, venue in VENUES.items():
        channels = [c.strip() for c in rows[name][2].split(",")]
        assert channels == list(venue.channels), (name, channels, venue.channels)


def test_readme_symbols_follow_the_naming_rule():
    symbols = _section(README, "Quickstart: real exchanges")
    for rule in ("`BASE-QUOTE`", "`BASE-QUOTE-PERP`", "`BASE-QUOTE-YYMMDD` (expiry)",
                 "instrument_type"):
        assert rule in symbols, rule
    examples = re.findall(r"`([A-Z0-9]+-[A-Z0-9]+(?:-[A-Z0-9]+)?)` \(", symbols)
    examples = [e for e in examples if not e.startswith("BASE-")]  # the rules themselves
    assert len(examples) >= 4
    for symbol in examples:
        assert re.fullmatch(r"[A-Z0-9]+-[A-Z0-9]+(-PERP|-\d{6})?", symbol), symbol


def test_architecture_section_is_there_for_the_layer_tree():
    assert _section(README, "Architecture").strip() != "## Architecture"


# --- settings and commands in the user guide ------------------------------------------------


def test_every_setting_has_a_row_with_env_name_and_default() -> None:
    rows = {r[0].strip("`"): r for r in _table_rows(_section(GUIDE, "Settings"))}
    assert len(SETTINGS) > 60
    missing = [path for path, _, _ in SETTINGS if path not in rows]
    assert not missing, f"settings without a user-guide row: {missing}"
    extra = sorted(set(rows) - {path for path, _, _ in SETTINGS})
    assert not extra, f"user-guide rows naming no setting: {extra}"
    for path, env, default in SETTINGS:
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
        assert name in command.commands, f"docs show `feedhouse {' '.join(path)}`"
        command = command.commands[name]
    return command


def _parse_usage(usage: str):
    words = usage.split()[1:]
    while words and words[0] in ("--config", "-c"):
        words = words[2:]
    path = []
    group = typer.main.get_command(app)
    while words and words[0] in getattr(group, "commands", {}):
        path.append(words[0])
        group = group.commands[words.pop(0)]
    options = re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(words))
    return path, options


def _guide_commands():
    for cell in (r[0] for r in _table_rows(_section(GUIDE, "Commands"))):
        for usage in re.findall(r"`(feedhouse [^`]*)`", cell):
            yield usage, *_parse_usage(usage)


def _shown_commands():
    """Every `feedhouse ...` in inline code or at the start of a code-block line."""
    for page, text in PAGES.items():
        usages = [" ".join(u.split()) for u in re.findall(r"`(feedhouse [^`]*)`", text)]
        fence = None  # the language of the code block we are in
        for line in text.splitlines():
            if line.startswith("```"):
                fence = None if fence is not None else (line[3:].strip() or "text")
                continue
            if fence not in ("bash", "sh"):
                continue
            for part in re.split(r"&&|;|\|", line.split("#")[0]):
                part = re.sub(r"^\s*(?:[A-Z_]+=\S+\s+)*", "", part).strip()
                if part.startswith("feedhouse "):
                    usages.append(part)
        for usage in usages:
            if usage.split()[1].startswith(("-", "COMMAND", "[")):
                continue  # `feedhouse [--config PATH] [--version] COMMAND`
            yield page, usage


def _check(usage: str, path: list[str], options: list) -> None:
    assert path, f"{usage!r} names no command"
    command = _command(path)
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    unknown = [o for o in options if o not in known]
    assert not unknown, f"{usage!r}: no such option {unknown}"


@pytest.mark.parametrize("usage, path, options", list(_guide_commands()))
def test_listed_command_and_options_exist(usage: str, path: list[str], options: list) -> None:
    _check(usage, path, options)


def test_every_command_is_listed() -> None:
    listed = {tuple(path[:1]) for _, path, _ in _guide_commands()}
    commands = {n for n, c in typer.main.get_command(app).commands.items() if not c.hidden}
    assert {c for c in commands if (c,) not in listed} == set()  # old names are hidden aliases


def test_every_command_shown_anywhere_exists() -> None:
    shown = list(_shown_commands())
    assert len(shown) > 40 and {p for p, _ in shown} >= {"README.md", "docs/user-guide.md"}
    for page, usage in shown:
        path, options = _parse_usage(usage)
        try:
            _check(usage, path, options)
        except AssertionError as exc:
            raise AssertionError(f"{page}: {exc}") from None


def test_every_setting_named_exists() -> None:
    envs = {env for _, env, _ in SETTINGS if env} | OTHER_ENV
    dotted = {path for path, _, _ in SETTINGS}
    for page, text in PAGES.items():
        for env in re.findall(r"\bFEEDHOUSE_[A-Z_]*[A-Z]\b", text):
            assert env in envs, f"{page}: {env} is no setting"
        for name in re.findall(r"`((?:sink|quality|mqtt)\.[a-z_]+)", text):
            known = name in dotted or f"feeds[].{name}" in dotted
            assert known, f"{page}: `{name}` is no setting"


def test_every_linked_file_exists() -> None:
    for page, text in PAGES.items():
        base = (ROOT / page).parent
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path = (base / target).resolve()
            name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else target
            assert path.exists() or name in PENDING_FILES, f"{page} links {target}: no such file"
    for pending in PENDING_FILES:
        assert f"({pending.removeprefix('docs/')})" in GUIDE or f"({pending})" in README


def test_every_make_target_shown_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"(?m)^([a-z][a-z-]*):", makefile)) | PENDING_MAKE
    for page, text in PAGES.items():
        for target in re.findall(r"\bmake ([a-z][a-z-]*)", text):
            assert target in targets, f"{page}: `make {target}` is no Makefile target"
