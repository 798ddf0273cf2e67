"""Apply the numbered schema files in sql/migrations/ that are not applied yet.

Each applied file is recorded in ops.schema_migrations with its checksum, so running
`feedhouse init` twice changes nothing, and a changed file that was already applied is
reported instead of being silently re-run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from feedhouse.core.dsn import chdb_path
from feedhouse.core.errors import FeedhouseError
from feedhouse.core.paths import sql_dir
from feedhouse.store.client import warehouse
from feedhouse.store.cluster_ddl import ClusterDDL, cluster_of
from feedhouse.store.lock import store_claim

_END = re.compile(r";[ \t]*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_BOOTSTRAP = [
    "CREATE DATABASE IF NOT EXISTS ops",
    """CREATE TABLE IF NOT EXISTS ops.schema_migrations
    (
        version UInt32 COMMENT 'number of the migration file',
        name String COMMENT 'file name',
        checksum String COMMENT 'sha256 of the file when applied',
        applied_ts DateTime64(6, 'UTC') DEFAULT now64(6) COMMENT 'when it was applied'
    ) ENGINE = MergeTree ORDER BY version
    COMMENT 'schema files applied by feedhouse init'""",
]


@dataclass(frozen=True)
class Migration:
    version: int
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def statements(self) -> list[str]:
        lines = [ln for ln in self.path.read_text().splitlines() if not ln.lstrip().startswith("--")]
        # A statement ends with ';' at the end of a line (';' inside comments is text).
        return [s.strip() for s in _END.split("\n".join(lines)) if s.strip()]


def discover(folder: Path | None = None) -> list[Migration]:
    folder = folder or sql_dir() / "migrations"
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION.match(path.name)
        if not match:
            raise FeedhouseError(f"migration file {path.name}: name must look like 001_name.sql")
        found.append(Migration(int(match.group(1)), path))
    return found


def schema_plan(
    folder: Path | None = None, cluster: str | None = None
) -> tuple[list[str], list[tuple[Migration, list[str]]]]:
    """(bootstrap statements, [(migration, its statements)]) as `init` runs them: as written,
    or rewritten for a ClickHouse cluster (feedhouse/cluster_ddl.py) when `cluster` is set."""
    convert = ClusterDDL(cluster).convert if cluster else (lambda statement: [statement])
    bootstrap = [out for statement in _BOOTSTRAP for out in convert(statement)]
    plan = [(m, [out for s in m.statements() for out in convert(s)]) for m in discover(folder)]
    return bootstrap, plan


def schema_script(folder: Path | None = None, cluster: str | None = None) -> str:
    """The whole schema as one SQL script (`feedhouse init --print`), recording each file in
    ops.schema_migrations like `init` does, so a later `feedhouse init` finds it applied."""
    bootstrap, plan = schema_plan(folder, cluster)
    parts = ["-- feedhouse schema" + (f" for cluster {cluster}" if cluster else ""), *bootstrap]
    for migration, statements in plan:
        parts.append(f"-- {migration.path.name}")
        parts.extend(statements)
        parts.append(
            "INSERT INTO ops.schema_migrations (version, name, checksum) VALUES "
            f"({migration.version}, '{migration.path.name}', '{migration.checksum}')"
        )
    return "".join(p + ("\n" if p.startswith("--") else ";\n\n") for p in parts)


def apply_migrations(client, folder: Path | None = None, cluster: str | None = None) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date).
    `cluster`: run the DDL ON CLUSTER with replicated local + Distributed tables (a
    warehouse initialized that way stays so without it: see cluster_ddl.cluster_of)."""
    engine = client.query(
        "SELECT engine_full FROM system.tables "
        "WHERE database = 'ops' AND name = 'schema_migrations'"
    ).result_rows
    cluster = cluster_of(engine[0][0] if engine else None, cluster)
    bootstrap, plan = schema_plan(folder, cluster)
    for statement in bootstrap:
        client.command(statement)
    rows = client.query("SELECT version, name, checksum FROM ops.schema_migrations").result_rows
    applied = {version: (name, checksum) for version, name, checksum in rows}
    done = []
    for migration, statements in plan:
        if migration.version in applied:
            name, checksum = applied[migration.version]
            if checksum != migration.checksum:
                raise FeedhouseError(
                    f"migration {migration.path.name} changed after it was applied; "
                    "add a new numbered file instead"
                )
            continue
        for statement in statements:
            client.command(statement)
        client.insert(
            "ops.schema_migrations",
            [[migration.version, migration.path.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        done.append(migration.path.name)
    return done


def list_tables(client) -> list[tuple[str, str, str]]:
    """(database, table, engine) of every feedhouse table."""
    return client.query(
        "SELECT database, name, engine FROM system.tables "
        "WHERE database IN ('market', 'iot', 'ops') ORDER BY database, name"
    ).result_rows


def init_schema(
    settings, cluster: str | None = None, after: Callable[[object], object] | None = None
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Apply pending migrations; return (applied files, all feedhouse tables).
    `cluster`: DDL ON CLUSTER, replicated local tables behind Distributed ones.
    `after(client)`: a step of a higher layer that must follow the migrations (the stored
    rows' conversion, dataflows/venues/stored.py), run in the same warehouse session."""
    store = chdb_path(settings.dsn)
    # a demo or drill working on this store: say so, touch nothing
    claim = store_claim(store, "feedhouse init") if store is not None else nullcontext()
    # connect first: a warehouse that cannot be used (bad password, unknown host) must
    # leave nothing behind
    with claim, warehouse(settings) as client:
        applied = apply_migrations(client, cluster=cluster)
        if after is not None:
            after(client)
        tables = list_tables(client)
    settings.home.mkdir(parents=True, exist_ok=True)
    assert settings.recovery_dir is not None
    settings.recovery_dir.mkdir(parents=True, exist_ok=True)
    return applied, tables
