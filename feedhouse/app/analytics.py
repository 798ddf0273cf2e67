"""The analytics queries shipped in `sql/analytics/`: name -> SQL file, and how to run one.

Each file starts with a header comment: a `-- Question: ...` line saying what it answers,
and one `-- param NAME Type = default: help` line per query parameter. Parameters are
ClickHouse server-side bindings (`{name:Type}` in the SQL), so values given on the command
line never become SQL text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedhouse.core.errors import InputError
from feedhouse.core.paths import sql_dir, sql_text

_PARAM = re.compile(r"^--\s*param\s+(\w+)\s+(\w+)\s*=\s*([^:]+?)\s*:\s*(.*)$")
_QUESTION = re.compile(r"^--\s*Question:\s*(.*)$")


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # ClickHouse type, e.g. UInt32, Float64
    default: str
    help: str

    def convert(self, text: str) -> Any:
        """Typed Python value for the binding; raises InputError naming the parameter."""
        try:
            if self.type.startswith(("UInt", "Int")):
                value = int(text)
                if self.type.startswith("UInt") and value < 0:
                    raise ValueError
                return value
            if self.type.startswith("Float"):
                return float(text)
        except ValueError:
            raise InputError(f"parameter {self.name!r}: {text!r} is not a {self.type}") from None
        return text


@dataclass(frozen=True)
class Query:
    name: str
    path: Path
    question: str
    params: tuple[Param, ...]

    @property
    def sql(self) -> str:
        return sql_text(self.path)

    def parameters(self, overrides: dict[str, str] | None = None) -> dict[str, Any]:
        """Defaults overlaid with `overrides`; unknown names raise InputError."""
        overrides = dict(overrides or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(overrides) - known)
        if unknown:
            have = ", ".join(sorted(known)) or "none"
            raise InputError(f"analytics {self.name}: unknown parameter {unknown[0]!r} (has: {have})")
        return {p.name: p.convert(overrides.get(p.name, p.default)) for p in self.params}


def parse_header(path: Path) -> tuple[str, tuple[Param, ...]]:
    question, params = "", []
    for line in path.read_text().splitlines():
        if not line.startswith("--"):
            break
        if match := _QUESTION.match(line):
            question = match.group(1).strip()
        elif match := _PARAM.match(line):
            params.append(Param(*match.groups()))
    return question, tuple(params)


def catalog(folder: Path | None = None) -> dict[str, Query]:
    """Every analytics query, by name (the file name without `.sql`), sorted."""
    folder = folder or sql_dir() / "analytics"
    found = {}
    for path in sorted(folder.glob("*.sql")):
        question, params = parse_header(path)
        found[path.stem] = Query(path.stem, path, question, params)
    return found


def get(name: str) -> Query:
    queries = catalog()
    if name not in queries:
        raise InputError(f"no analytics query {name!r} (known: {', '.join(queries)})")
    return queries[name]


def run(client, name: str, overrides: dict[str, str] | None = None) -> tuple[list[str], list]:
    """Run one query on an open client; returns (column names, rows)."""
    query = get(name)
    result = client.query(query.sql, parameters=query.parameters(overrides))
    return list(result.column_names), result.result_rows
