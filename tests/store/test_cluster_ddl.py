"""`feedhouse init --cluster NAME`: the schema rewritten for a ClickHouse cluster.

No cluster runs here, so the rewrite is checked as text and through ClickHouse's own
parser (chDB's formatQuery), and against the sorting keys of a plain embedded schema.
"""

from __future__ import annotations

import re

import pytest

from feedhouse.core.errors import FeedhouseError, SettingsError
from feedhouse.store.client import warehouse
from feedhouse.store.cluster_ddl import ClusterDDL, cluster_of
from feedhouse.store.migrations import discover, init_schema, schema_plan, schema_script
from tests.support.cli import run_cli

CLUSTER = "prod"
MERGE_TREE = re.compile(r"ENGINE = (\w*MergeTree)")


def _statements(cluster: str | None) -> list[str]:
    bootstrap, plan = schema_plan(cluster=cluster)
    return bootstrap + [s for _, statements in plan for s in statements]


def _plain_tables(client) -> dict[str, tuple[str, str, str]]:
    rows = client.query(
        "SELECT database || '.' || name, engine, engine_full, sorting_key FROM system.tables "
        "WHERE database IN ('market', 'iot', 'ops') AND engine LIKE '%MergeTree'"
    ).result_rows
    return {name: (engine, full, key) for name, engine, full, key in rows}


def test_every_statement_runs_on_the_cluster_and_parses(settings) -> None:
    statements = _statements(CLUSTER)
    with warehouse(settings) as client:
        for statement in statements:
            # ClickHouse's parser: a rewrite that is not valid SQL fails here
            client.query("SELECT formatQuery({q:String})", parameters={"q": statement})
    for statement in statements:
        if statement.startswith("INSERT INTO "):  # data a migration moves: runs once
            continue
        assert re.match(r"^(CREATE|ALTER|EXCHANGE|DROP) ", statement), statement
        head = statement.split("(", 1)[0] if statement.startswith("CREATE TABLE") else statement
        assert f" ON CLUSTER {CLUSTER}" in head, statement[:80]
    assert "non_replicated_deduplication_window" not in "".join(statements)


def test_merge_tree_tables_become_replicated_locals_behind_distributed(settings) -> None:
    init_schema(settings)  # the plain schema: engines, engine arguments and sorting keys
    with warehouse(settings) as client:
        plain = _plain_tables(client)
    statements = _statements(CLUSTER)
    assert len(plain) == 14  # every table
    for name, (engine, full, key) in plain.items():
        db, table = name.split(".")
        local = [s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {name}_local ")]
        # one, or two where a migration dropped and created it again (008: the candles)
        assert len(local) == (2 if name == "market.ohlcv_1m" else 1), name
        args = re.match(rf"{engine}(?:\((.*?)\))?(?: |$)", full).group(1)
        zk = f"'/clickhouse/tables/{{shard}}/{db}/{table}', '{{replica}}'"
        expected = f"ENGINE = Replicated{engine}({zk}{', ' + args if args else ''})"
        assert expected in local[-1], (name, local[-1])
        distributed = (
            f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {CLUSTER} AS {name}_local "
            f"ENGINE = Distributed({CLUSTER}, {db}, {table}_local, cityHash64({key}))"
        )
        assert [s for s in statements if s.startswith(distributed)], name
    assert any(
        "'/clickhouse/tables/{shard}/market/trades', '{replica}', inserted_ts)" in s
        for s in statements
    )


def test_materialized_view_aggregates_on_the_shard() -> None:
    (view,) = [s for s in _statements(CLUSTER) if "MATERIALIZED VIEW" in s]
    assert view.startswith(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS market.ohlcv_1m_mv ON CLUSTER {CLUSTER} "
        "TO market.ohlcv_1m_local AS"
    )
    assert re.search(r"FROM market\.trades_local\b", view)
    assert not re.search(r"market\.(trades|ohlcv_1m)\b(?!_)", view)


def test_candles_migration_drops_both_tables_and_fills_through_the_distributed_one() -> None:
    plan = {m.path.name[:3]: statements for m, statements in schema_plan(cluster=CLUSTER)[1]}
    drop_view, drop_dist, drop_local, create_local, create_dist, *rest = plan["008"]
    assert drop_view == f"DROP VIEW IF EXISTS market.ohlcv_1m_mv ON CLUSTER {CLUSTER} SYNC"
    assert drop_dist == f"DROP TABLE IF EXISTS market.ohlcv_1m ON CLUSTER {CLUSTER} SYNC"
    assert drop_local == f"DROP TABLE IF EXISTS market.ohlcv_1m_local ON CLUSTER {CLUSTER} SYNC"
    assert create_local.startswith(f"CREATE TABLE IF NOT EXISTS market.ohlcv_1m_local ON CLUSTER {CLUSTER}")
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/market/ohlcv_1m'" in create_local
    assert create_dist.startswith(f"CREATE TABLE IF NOT EXISTS market.ohlcv_1m ON CLUSTER {CLUSTER} AS")
    *alters, insert = rest
    assert len(alters) == 4 and all(
        a.startswith(f"ALTER TABLE market.trades_local ON CLUSTER {CLUSTER} ") for a in alters)
    assert [a.split()[6] for a in alters] == ["ADD", "ADD", "MATERIALIZE", "MATERIALIZE"]
    assert insert.startswith("INSERT INTO market.ohlcv_1m (") and "FROM market.trades FINAL" in insert


def test_alters_go_to_the_local_table_and_column_changes_to_the_distributed() -> None:
    plan = {m.path.name[:3]: statements for m, statements in schema_plan(cluster=CLUSTER)[1]}
    add, add_distributed, comment = plan["005"]
    assert add.startswith(f"ALTER TABLE ops.ingest_ledger_local ON CLUSTER {CLUSTER} ADD COLUMN")
    assert add_distributed == add.replace("ingest_ledger_local", "ingest_ledger")
    assert comment.startswith(f"ALTER TABLE ops.ingest_ledger_local ON CLUSTER {CLUSTER} COMMENT")
    assert all(
        s.startswith(f"ALTER TABLE ops.row_count_audit_local ON CLUSTER {CLUSTER} COMMENT COLUMN")
        for s in plan["006"]
    )


def test_mixed_alter_sends_only_column_changes_to_the_distributed_table() -> None:
    ddl = ClusterDDL(CLUSTER)
    ddl.convert("CREATE TABLE IF NOT EXISTS x.t (a UInt8) ENGINE = MergeTree ORDER BY a")
    local, distributed = ddl.convert(
        "ALTER TABLE x.t ADD COLUMN b UInt8 COMMENT 'one, two (', COMMENT COLUMN a 'x, y'"
    )
    assert local.startswith(f"ALTER TABLE x.t_local ON CLUSTER {CLUSTER} ADD COLUMN b")
    assert (
        distributed
        == f"ALTER TABLE x.t ON CLUSTER {CLUSTER} ADD COLUMN b UInt8 COMMENT 'one, two ('"
    )


def test_plain_schema_is_unchanged() -> None:
    bootstrap, plan = schema_plan()
    assert [m for m, _ in plan] == discover()
    for migration, statements in plan:
        assert statements == migration.statements()
    assert "ON CLUSTER" not in schema_script() and "_local" not in schema_script()


def test_printed_script_builds_the_schema_init_would(settings, tmp_path) -> None:
    script = schema_script()
    statements = [s for s in script.split(";\n\n") if s.strip()]
    with warehouse(settings) as client:
        for statement in statements:
            lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
            client.command("\n".join(lines))
        printed = _plain_tables(client)
    applied, _ = init_schema(settings)
    assert applied == []  # the script recorded every file, like init
    with warehouse(settings) as client:
        assert _plain_tables(client) == printed


@pytest.mark.integration
def test_cli_print_and_bad_cluster_name() -> None:
    result = run_cli("init", "--print", "--cluster", CLUSTER)
    assert result.returncode == 0, result.stderr
    assert result.stdout == schema_script(cluster=CLUSTER)
    bad = run_cli("init", "--print", "--cluster", "x; DROP")
    assert bad.returncode == 2 and "--cluster" in bad.stderr


def test_a_warehouse_keeps_the_mode_it_was_initialized_with(initialized) -> None:
    with pytest.raises(FeedhouseError, match="initialized without --cluster"):
        init_schema(initialized, CLUSTER)
    with warehouse(initialized) as client:
        (engine,) = client.query(
            "SELECT engine_full FROM system.tables "
            "WHERE database = 'ops' AND name = 'schema_migrations'"
        ).result_rows[0]
    assert cluster_of(engine, None) is None  # plain stays plain
    assert cluster_of(None, CLUSTER) == CLUSTER and cluster_of(None, None) is None
    # a cluster warehouse: plain `init` and `feedhouse run` continue ON CLUSTER
    distributed = f"Distributed({CLUSTER}, ops, schema_migrations_local, cityHash64(version))"
    assert cluster_of(distributed, None) == CLUSTER
    assert cluster_of(distributed.replace(CLUSTER, f"'{CLUSTER}'", 1), CLUSTER) == CLUSTER
    with pytest.raises(FeedhouseError, match=f"initialized for cluster {CLUSTER}"):
        cluster_of(distributed, "other")


def test_unknown_statements_and_names_are_refused() -> None:
    with pytest.raises(FeedhouseError, match="no cluster rule"):
        ClusterDDL(CLUSTER).convert("TRUNCATE TABLE market.trades")
    with pytest.raises(SettingsError):
        ClusterDDL("db.cluster")


def test_table_rebuild_swaps_locals_and_remakes_the_distributed_table() -> None:
    ddl = ClusterDDL(CLUSTER)
    for name, key in (("t", "a"), ("t_new", "a, b")):
        ddl.convert(f"CREATE TABLE IF NOT EXISTS db.{name} (a String, b String) "
                    f"ENGINE = MergeTree ORDER BY ({key})")
    insert = "INSERT INTO db.t_new SELECT a, b FROM db.t"
    assert ddl.convert(insert) == [insert]  # once, through the Distributed tables
    assert ddl.convert("EXCHANGE TABLES db.t AND db.t_new") == [
        f"EXCHANGE TABLES db.t_local AND db.t_new_local ON CLUSTER {CLUSTER}",
        f"DROP TABLE IF EXISTS db.t ON CLUSTER {CLUSTER}",
        f"CREATE TABLE IF NOT EXISTS db.t ON CLUSTER {CLUSTER} AS db.t_local "
        f"ENGINE = Distributed({CLUSTER}, db, t_local, cityHash64(a, b))",
    ]
    assert ddl.convert("DROP TABLE IF EXISTS db.t_new") == [  # SYNC: the name is free at once
        f"DROP TABLE IF EXISTS db.t_new ON CLUSTER {CLUSTER} SYNC",
        f"DROP TABLE IF EXISTS db.t_new_local ON CLUSTER {CLUSTER} SYNC",
    ]
