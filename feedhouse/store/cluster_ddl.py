"""The schema's DDL rewritten for a ClickHouse cluster (`feedhouse init --cluster NAME`).

One rule set, applied statement by statement in migration order:
- every CREATE DATABASE / TABLE / VIEW and every ALTER runs `ON CLUSTER NAME`;
- a MergeTree-family table `db.t` becomes the replicated local table `db.t_local`
  (`Replicated<Engine>('/clickhouse/tables/{shard}/db/t', '{replica}'[, args])`) and
  `db.t` becomes `Distributed(NAME, db, t_local, cityHash64(<ORDER BY columns>))`, so a
  key always lands on the same shard and ReplacingMergeTree/dedup tokens keep working;
- a materialized view reads and writes the local tables (aggregation stays on the shard);
- ALTERs go to the local table; column changes (ADD/DROP/MODIFY/RENAME COLUMN) also to
  the Distributed table, whose columns must match;
- DROP TABLE/VIEW runs ON CLUSTER (SYNC), for both tables of a sharded one; an
  INSERT ... SELECT (data a migration moves) runs once, through the Distributed tables.
The rewriter keeps state (which tables became local), so it must see every statement of
every migration in order, applied or not: `feedhouse.store.migrations.schema_plan` does that.
"""

from __future__ import annotations

import re

from feedhouse.core.errors import FeedhouseError, SettingsError
from feedhouse.core.sqlsafe import identifier

LOCAL_SUFFIX = "_local"
ZK_PATH = "/clickhouse/tables/{shard}/%s/%s"

_NAME = r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)"
_CREATE_DB = re.compile(r"^(CREATE DATABASE\s+(?:IF NOT EXISTS\s+)?[A-Za-z_]\w*)(.*)$", re.S | re.I)
_CREATE_TABLE = re.compile(
    rf"^(CREATE TABLE\s+(?:IF NOT EXISTS\s+)?){_NAME}\s*(\(.*)$", re.S | re.I
)
_CREATE_VIEW = re.compile(
    rf"^(CREATE (?:MATERIALIZED )?VIEW\s+(?:IF NOT EXISTS\s+)?{_NAME})(.*)$", re.S | re.I
)
_ALTER = re.compile(rf"^ALTER TABLE\s+{_NAME}\s+(.*)$", re.S | re.I)
_DROP = re.compile(rf"^DROP (TABLE|VIEW)\s+(IF EXISTS\s+)?{_NAME}\s*$", re.I)
_INSERT_SELECT = re.compile(r"^INSERT INTO\s+[A-Za-z_]\w*\.[A-Za-z_]\w*\b.*\bSELECT\b", re.S | re.I)
_ENGINE = re.compile(r"ENGINE\s*=\s*(\w+)", re.I)
_ORDER_BY = re.compile(r"\bORDER BY\s+", re.I)
_TABLE_COMMENT = re.compile(r"\bCOMMENT\s+('(?:[^'\\]|\\.)*')\s*$", re.S | re.I)
_COLUMN_CHANGE = re.compile(r"^\s*(ADD|DROP|MODIFY|RENAME)\s+COLUMN\b", re.I)
_TABLE_REF = re.compile(rf"\b(FROM|JOIN|TO)\s+{_NAME}\b", re.I)
# table rebuilds (migration 010): fill a new table, swap it in, drop the old data
_EXCHANGE = re.compile(rf"^EXCHANGE TABLES\s+{_NAME}\s+AND\s+{_NAME}\s*$", re.I)


def _closing(text: str, start: int) -> int:
    """Index of the ')' matching the '(' at `start`, skipping quoted strings."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise FeedhouseError(f"unbalanced parentheses in: {text[:60]}")


def _split_top(text: str) -> list[str]:
    """`a, f(b, c), 'd, e'` -> ['a', 'f(b, c)', "'d, e'"]: commas outside () and quotes."""
    parts, depth, quote, current = [], 0, "", ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += ch
    return [*parts, current.strip()] if current.strip() else parts


def order_by_columns(table_tail: str) -> list[str]:
    """The ORDER BY key of a CREATE TABLE's tail (what follows the column list)."""
    match = _ORDER_BY.search(table_tail)
    if match is None:
        raise FeedhouseError("a MergeTree table without ORDER BY cannot be sharded")
    start = match.end()
    if table_tail[start] == "(":
        return _split_top(table_tail[start + 1 : _closing(table_tail, start)])
    return [re.match(r"[\w.]+(\([^)]*\))?", table_tail[start:]).group(0)]


class ClusterDDL:
    """Rewrites the schema's statements for the cluster `name`; see the module doc."""

    def __init__(self, cluster: str) -> None:
        self.cluster = identifier(cluster, "option '--cluster'")
        if "." in cluster:
            raise SettingsError(f"option '--cluster': {cluster!r} is not a cluster name")
        self.local: set[str] = set()  # "db.t" of tables that became db.t_local + Distributed
        self.distributed: dict[str, tuple[str, str]] = {}  # "db.t" -> (shard key, ENGINE ...)

    def _ref(self, db: str, table: str) -> str:
        name = f"{db}.{table}"
        return name + LOCAL_SUFFIX if name in self.local else name

    def convert(self, statement: str) -> list[str]:
        on = f" ON CLUSTER {self.cluster}"
        if m := _CREATE_DB.match(statement):
            return [m.group(1) + on + m.group(2)]
        if m := _CREATE_TABLE.match(statement):
            return self._table(m.group(1), m.group(2), m.group(3), m.group(4))
        if m := _CREATE_VIEW.match(statement):
            # TO / FROM / JOIN of tables that became local: the view stays on its shard
            body = _TABLE_REF.sub(
                lambda r: f"{r.group(1)} {self._ref(r.group(2), r.group(3))}", m.group(4)
            )
            return [m.group(1) + on + body]
        if m := _ALTER.match(statement):
            db, table, actions = m.groups()
            target = self._ref(db, table)
            if target != f"{db}.{table}":  # replicated tables dedup by their own window
                actions = actions.replace(
                    "non_replicated_deduplication_window", "replicated_deduplication_window"
                )
            out = [f"ALTER TABLE {target}{on} {actions}"]
            # the Distributed table must keep the local table's columns
            changes = [a for a in _split_top(actions) if _COLUMN_CHANGE.match(a)]
            if target != f"{db}.{table}" and changes:
                out.append(f"ALTER TABLE {db}.{table}{on} {', '.join(changes)}")
            return out
        if m := _DROP.match(statement):
            kind, if_exists, db, table = m.group(1).upper(), m.group(2) or "", m.group(3), m.group(4)
            name = f"{db}.{table}"
            if name in self.local:  # the Distributed table and its replicated local table
                self.local.discard(name)
                return [f"DROP TABLE {if_exists}{name}{on} SYNC",
                        f"DROP TABLE {if_exists}{name}{LOCAL_SUFFIX}{on} SYNC"]
            return [f"DROP {kind} {if_exists}{name}{on} SYNC"]
        if _INSERT_SELECT.match(statement):
            # data, not DDL: once, through the Distributed tables (each key on its shard)
            return [statement]
        if m := _EXCHANGE.match(statement):
            return self._exchange(*m.groups())
        raise FeedhouseError(f"--cluster: no cluster rule for statement: {statement[:60]}")

    def _table(self, head: str, db: str, table: str, rest: str) -> list[str]:
        on = f" ON CLUSTER {self.cluster}"
        columns_end = _closing(rest, 0) + 1
        columns, tail = rest[:columns_end], rest[columns_end:]
        engine = _ENGINE.search(tail)
        if (
            engine is None
            or not engine.group(1).endswith("MergeTree")
            or engine.group(1).startswith("Replicated")
        ):
            return [f"{head}{db}.{table}{on} {rest}"]
        args_at = engine.end()
        while args_at < len(tail) and tail[args_at] == " ":
            args_at += 1
        args = ""
        after = engine.end()
        if args_at < len(tail) and tail[args_at] == "(":
            close = _closing(tail, args_at)
            args, after = tail[args_at + 1 : close].strip(), close + 1
        replicated = f"Replicated{engine.group(1)}('{ZK_PATH % (db, table)}', '{{replica}}'"
        replicated += f", {args})" if args else ")"
        local_tail = (
            tail[: engine.start()]
            + f"ENGINE = {replicated}"
            + tail[after:].replace(
                "non_replicated_deduplication_window", "replicated_deduplication_window"
            )
        )
        key = ", ".join(order_by_columns(tail))
        distributed = (
            f"{head}{db}.{table}{on} AS {db}.{table}{LOCAL_SUFFIX} "
            f"ENGINE = Distributed({self.cluster}, {db}, {table}{LOCAL_SUFFIX}, cityHash64({key}))"
        )
        if comment := _TABLE_COMMENT.search(tail):
            distributed += f" COMMENT {comment.group(1)}"
        self.local.add(f"{db}.{table}")
        self.distributed[f"{db}.{table}"] = (key, distributed[distributed.index(" ENGINE = "):])
        return [f"{head}{db}.{table}{LOCAL_SUFFIX}{on} {columns}{local_tail}", distributed]

    def _exchange(self, db: str, table: str, other_db: str, other: str) -> list[str]:
        """Swap the local tables' data; `db.table`'s Distributed table is made again with
        the columns and sharding key of the table swapped in (it names `table_local`)."""
        on = f" ON CLUSTER {self.cluster}"
        name, other_name = f"{db}.{table}", f"{other_db}.{other}"
        if name not in self.local or other_name not in self.local:
            return [f"EXCHANGE TABLES {self._ref(db, table)} AND {self._ref(other_db, other)}{on}"]
        key, tail = self.distributed[other_name]
        tail = tail.replace(f", {other_db}, {other}{LOCAL_SUFFIX}, ", f", {db}, {table}{LOCAL_SUFFIX}, ")
        self.distributed[name] = (key, tail)
        return [
            f"EXCHANGE TABLES {name}{LOCAL_SUFFIX} AND {other_name}{LOCAL_SUFFIX}{on}",
            f"DROP TABLE IF EXISTS {name}{on}",
            f"CREATE TABLE IF NOT EXISTS {name}{on} AS {name}{LOCAL_SUFFIX}{tail}",
        ]


_DISTRIBUTED_CLUSTER = re.compile(r"^Distributed\(\s*'?([A-Za-z_]\w*)'?")


def cluster_of(migrations_engine: str | None, cluster: str | None) -> str | None:
    """The cluster `feedhouse init` must use, given the engine (`engine_full`) of
    ops.schema_migrations (None before the first init) and the `--cluster` asked for.
    A warehouse keeps the mode it was created with: a cluster one names its cluster in
    that Distributed engine, so a plain `init` (or `feedhouse run`) continues ON CLUSTER."""
    if migrations_engine is None:
        return cluster
    found = _DISTRIBUTED_CLUSTER.match(migrations_engine)
    if found is None:
        if cluster:
            raise FeedhouseError(
                "this warehouse was initialized without --cluster; its schema is not replicated"
            )
        return None
    if cluster and cluster != found.group(1):
        raise FeedhouseError(f"this warehouse was initialized for cluster {found.group(1)}")
    return found.group(1)
