"""The code's shape: no import cycles, and project imports at module top.

import-linter (`make lint`) holds the layer rule; this adds what its contracts do not:
no two modules import each other (directly or through others), and an import inside a
function is allowed only where it defers a heavy dependency on purpose and says so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

from tests.support.paths import ROOT

PACKAGES = ("feedhouse", "dataflows", "quality", "orchestration")


def test_no_module_import_cycles() -> None:
    graph = grimp.build_graph(*PACKAGES)
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert cycles == []


def test_project_imports_inside_functions_say_why() -> None:
    hidden = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for func in ast.walk(ast.parse(source)):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[
                        0
                    ] in PACKAGES and "deferred" not in lines[node.lineno - 1]:
                        hidden.append(f"{Path(path).relative_to(ROOT)}:{node.lineno}")
    assert hidden == []


# A new venue is one declarative module of at most 150 lines (issue 15): its declaration
# (dataflows/venues/declare.py) plus its parse functions.
VENUE_LINES = 150


def test_venue_modules_stay_small() -> None:
    shared = {"__init__", "base", "common", "declare", "instruments", "stored"}
    over = {}
    for path in sorted((ROOT / "dataflows" / "venues").glob("*.py")):
        lines = len(path.read_text().splitlines())
        if path.stem not in shared and lines > VENUE_LINES:
            over[path.name] = lines
    assert not over, f"venue modules over {VENUE_LINES} lines (declare, don't copy): {over}"
