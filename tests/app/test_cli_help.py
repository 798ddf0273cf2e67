"""`feedhouse --help` reads well: commands in panels, placeholders a person can read."""

from __future__ import annotations

import re

import typer.main
from typer.testing import CliRunner

from feedhouse.app.cli._help import PANELS
from feedhouse.app.cli.main import app


def _all_helps() -> list[tuple[str, str]]:
    root = typer.main.get_command(app)
    paths = [[]]
    for name, command in root.commands.items():
        paths.append([name])
        paths += [[name, sub] for sub in getattr(command, "commands", {})]
    return [(" ".join(p), _help(*p)) for p in paths]


def _help(*path: str) -> str:
    """The help as a user sees it (in process: 30 subprocesses would take a minute)."""
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert done.exit_code == 0, done.output
    return done.output


def test_every_help_has_readable_placeholders():
    helps = _all_helps()
    assert len(helps) > 20
    for path, text in helps:
        assert "Usage: feedhouse" in text, path
        odd = re.findall(r"<(?:bool|int|float|str|list\[[^\]]*\]|[a-z]+ range)>|\[x[<>]=", text)
        assert not odd, (path, odd)
    check = dict(helps)["check"]
    assert re.search(r"--minutes\s+-m\s+N ≥ 1\s", check), check
    assert re.search(r"--suite\s+-s\s+TEXT \(repeatable\)", check), check
    assert re.search(r"--docs\s+--no-docs\s+build Data Docs", check), check  # a flag: no type
    assert re.search(r"--dup\s+X \(0–0\.5\)", dict(helps)["drill outage"])
    assert re.search(r"--format\s+-f\s+table\|csv\|json", dict(helps)["sql"])


def test_commands_are_grouped_in_panels_in_order():
    text = _help()
    starts = [text.index(f"─ {panel} ─") for panel in PANELS]
    assert starts == sorted(starts), "panels in the order ingest, verify, explore, operate, test tools"
    listed = {c for names in PANELS.values() for c in names}
    shown = {n for n, c in typer.main.get_command(app).commands.items() if not c.hidden}
    assert listed == shown, "every command in a panel (old names are hidden aliases)"
    for panel, names in PANELS.items():
        begin = text.index(f"─ {panel} ─")
        end = text.find("╰", begin)
        block = text[begin:end]
        assert [n for n in re.findall(r"│ ([a-z-]+)\s", block) if n in listed] == list(names), panel
