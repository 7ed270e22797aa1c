"""DDL and the end-of-run merge of each stream's rows into its staging table.

Everything here runs inside the run's one transaction: readers keep seeing the previous
snapshot until COMMIT. A new staging table is created and COPYed into directly (invisible
until commit), its primary key added after the COPY. An existing one is only touched at the
end: its rows were COPYed into a temp table, and the snapshot is applied as a diff by key.

How the diff compares the two tables is chosen from the snapshot. Measured on an unchanged
snapshot of 10M rows in key order (`make bench-large`'s file; EXPLAIN ANALYZE in the README's
benchmark section): a hash join of the new rows spilling to temp files with 256 MB of work_mem
took 41 s, held in memory 24 s; a merge join walking both key indexes side by side 6.4-9.5 s
(with no memory and no temp files), after 2-3.5 s to index the new rows. So when both tables
hold their rows in key order (the key's correlation, from ANALYZE) the merge join is used;
otherwise the planner hashes the new rows, with work_mem sized to them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import typing as t

import psycopg
from psycopg import sql

from target_wiserock_postgres.errors import LoadError
from target_wiserock_postgres.types import ColumnType, Kind

logger = logging.getLogger("target-wiserock-postgres")

# Above this share of changed rows, deleting all rows and inserting all is cheaper than the diff.
# Measured on 1M rows (`python -m bench.loader`, merge step alone): the diff takes 1.8 s when
# nothing changed and 6.1 s when every row changed; delete all + insert all 3.8-4 s either way.
REPLACE_ALL_SHARE = 0.5
SAMPLE_ROWS = 10_000  # new rows compared with the table to estimate that share (1 % of a million)
SAMPLE_FROM_ROWS = 20_000  # smaller snapshots always take the diff: it is cheap for them

# work_mem for the merge (SET LOCAL: this transaction only): the new rows' size times this, so
# that a hash of them (work_mem times hash_mem_multiplier) holds them with its overhead; at least
# MIN_WORK_MEM, at most a quarter of effective_cache_size (the server's own word for the memory
# it may count on).
WORK_MEM_PER_BYTE = 1.5
MIN_WORK_MEM = 64 << 20
# Both tables are "in key order" above this correlation of the (first) key column.
ORDERED_CORRELATION = 0.9


@dataclasses.dataclass(frozen=True)
class TableInfo:
    """An existing table as the catalog describes it."""

    columns: dict[str, str]  # name -> format_type() spelling
    not_null: frozenset[str]
    primary_key: tuple[str, ...]
    constraint: str | None  # the primary key's name


@dataclasses.dataclass(frozen=True)
class MergeResult:
    deleted: int
    inserted: int


def relation(schema: str, table: str) -> sql.Composed:
    return sql.Identifier(schema, table)


def _names(columns: t.Iterable[str], prefix: str | None = None) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(prefix, name) if prefix else sql.Identifier(name) for name in columns)


def ensure_schema(connection: psycopg.Connection, schema: str) -> None:
    """Create the schema when missing (checked first: IF NOT EXISTS still needs the CREATE right).

    Another run creating it at the same time (two loads into a new schema, e.g. on two workers):
    our CREATE waits for that run's transaction; when it committed, the schema is there and ours
    is undone to its savepoint; when it rolled back, ours stands."""
    if connection.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone():
        return
    with contextlib.suppress(psycopg.errors.UniqueViolation), connection.transaction():
        connection.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))


def read_table(connection: psycopg.Connection, schema: str, table: str) -> TableInfo | None:
    found = connection.execute(
        "select c.oid, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relname = %s", (schema, table)).fetchone()
    if found is None:
        return None
    oid, kind = found
    if kind not in ("r", "p"):
        raise LoadError(f"table {table}: {schema}.{table} exists and is not a table (relkind {kind!r})")
    columns = connection.execute(
        "select attname, format_type(atttypid, atttypmod), attnotnull from pg_attribute "
        "where attrelid = %s and attnum > 0 and not attisdropped order by attnum", (oid,)).fetchall()
    key = connection.execute(
        "select conname, array(select a.attname from unnest(conkey) with ordinality k(num, ord) "
        "join pg_attribute a on a.attrelid = conrelid and a.attnum = k.num order by k.ord)::text[] "
        "from pg_constraint where conrelid = %s and contype = 'p'", (oid,)).fetchone()
    return TableInfo(columns={name: kind for name, kind, _ in columns},
                     not_null=frozenset(name for name, _, not_null in columns if not_null),
                     primary_key=tuple(key[1]) if key else (), constraint=key[0] if key else None)


def _definitions(columns: t.Mapping[str, ColumnType], keys: t.Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(sql.Identifier(name), sql.SQL(column.sql), sql.SQL(" not null" if name in keys else ""))
        for name, column in columns.items())


def create_table(connection: psycopg.Connection, target: sql.Composable, columns: t.Mapping[str, ColumnType],
                 keys: t.Sequence[str], *, temporary: bool) -> None:
    """The table rows are COPYed into; a temp one is dropped at the end of the transaction."""
    template = "create temp table {} ({}) on commit drop" if temporary else "create table {} ({})"
    connection.execute(sql.SQL(template).format(target, _definitions(columns, keys)))


def change_loading_table(connection: psycopg.Connection, target: sql.Composable, old: t.Mapping[str, ColumnType],
                         new: t.Mapping[str, ColumnType], old_keys: t.Sequence[str], keys: t.Sequence[str]) -> None:
    """A later SCHEMA message of the same stream in this run: the table being loaded follows it."""
    actions = [sql.SQL("add column {} {}").format(sql.Identifier(name), sql.SQL(column.sql))
               for name, column in new.items() if name not in old]
    actions += [sql.SQL("alter column {0} type {1} using {0}::text::{1}").format(sql.Identifier(name), sql.SQL(column.sql))
                for name, column in new.items() if name in old and old[name].sql != column.sql]
    actions += [sql.SQL("alter column {} drop not null").format(sql.Identifier(name)) for name in old_keys if name not in keys]
    actions += [sql.SQL("alter column {} set not null").format(sql.Identifier(name)) for name in keys if name not in old_keys]
    if actions:
        connection.execute(sql.SQL("alter table {} ").format(target) + sql.SQL(", ").join(actions))


def add_primary_key(connection: psycopg.Connection, target: sql.Composable, keys: t.Sequence[str]) -> None:
    if keys:
        connection.execute(sql.SQL("alter table {} add primary key ({})").format(target, _names(keys)))


def _identical(columns: t.Mapping[str, ColumnType], keys: t.Sequence[str], others: t.Iterable[str]) -> sql.Composed:
    """New row n equals old row s (of the same key) exactly: NULLs equal; numeric by value and
    scale (1.10 is not 1.1: the same as comparing their text, without printing 20M numbers);
    jsonb as text (exact digits and key order as stored); and columns the stream no longer has
    must be NULL in the old row."""
    def values(alias: str) -> list[sql.Composable]:
        parts: list[sql.Composable] = []
        for name, column in columns.items():
            if name in keys and column.sql != "numeric" and column.kind is not Kind.JSON:
                continue  # equal by the join's condition (a numeric key of another scale is not)
            value = sql.Identifier(alias, name)
            if column.kind is Kind.JSON:
                parts.append(sql.SQL("{}::text").format(value))
                continue
            parts.append(value)
            if column.sql == "numeric":
                parts.append(sql.SQL("scale({})").format(value))
        return parts

    conditions = [sql.SQL("{} is null").format(sql.Identifier("s", name)) for name in others]
    if new := values("n"):
        conditions.insert(0, sql.SQL("row({}) is not distinct from row({})").format(
            sql.SQL(", ").join(new), sql.SQL(", ").join(values("s"))))
    return sql.SQL(" and ").join(conditions or [sql.SQL("true")])


def _regclass(connection: psycopg.Connection, relation: sql.Composable) -> sql.Composed:
    return sql.SQL("{}::regclass").format(sql.Literal(relation.as_string(connection)))


def _size_memory(connection: psycopg.Connection, loaded: sql.Composable) -> None:
    """work_mem for hashing the new rows, from their size (see WORK_MEM_PER_BYTE)."""
    found = connection.execute(sql.SQL(
        "select greatest({minimum}, least(pg_table_size({loaded}) * {per_byte} "
        "/ current_setting('hash_mem_multiplier')::float8, "
        "(select setting::bigint * 8192 / 4 from pg_settings where name = 'effective_cache_size')))::bigint / 1024").format(
            minimum=sql.Literal(MIN_WORK_MEM), loaded=_regclass(connection, loaded),
            per_byte=sql.Literal(WORK_MEM_PER_BYTE))).fetchone()
    kilobytes = found[0] if found else MIN_WORK_MEM // 1024
    connection.execute(sql.SQL("set local work_mem = {}").format(sql.Literal(f"{kilobytes}kB")))


def _in_key_order(connection: psycopg.Connection, target: sql.Composable, loaded: sql.Composable, key: str) -> bool:
    """Both tables hold their rows in the order of the (first) key column: ANALYZE's correlation."""
    found = connection.execute(sql.SQL(
        "select count(*) from pg_stats s join pg_namespace n on n.nspname = s.schemaname "
        "join pg_class c on c.relnamespace = n.oid and c.relname = s.tablename "
        "where c.oid in ({}, {}) and s.attname = {} and abs(s.correlation) > {}").format(
            _regclass(connection, target), _regclass(connection, loaded), sql.Literal(key),
            sql.Literal(ORDERED_CORRELATION))).fetchone()
    return found is not None and found[0] == 2


def _changed_share(connection: psycopg.Connection, target: sql.Composable, loaded: sql.Composable,
                   same_key: sql.Composable, identical: sql.Composable, rows: int) -> float:
    """The share of new rows not identical to the table's row of their key, from a sample of
    about SAMPLE_ROWS of the new rows (their pages): tens of milliseconds at any size."""
    percent = min(100.0, 100.0 * SAMPLE_ROWS / max(rows, 1))
    sampled, changed = connection.execute(sql.SQL(
        "select count(*), count(*) filter (where not exists (select from {} s where {} and {})) "
        "from {} n tablesample system ({})").format(target, same_key, identical, loaded,
                                                    sql.Literal(percent))).fetchone() or (0, 0)
    return changed / sampled if sampled else 0.0


def merge_snapshot(connection: psycopg.Connection, schema: str, table: str, loaded: sql.Composable,
                   columns: t.Mapping[str, ColumnType], keys: t.Sequence[str], rows: int, *,
                   replace_all: bool | None = None) -> MergeResult:
    """Make `table` hold exactly the `rows` rows of `loaded` (a temp table with the stream's columns).

    Locks the table in SHARE ROW EXCLUSIVE mode (two loaders take turns; SELECTs never wait),
    makes its columns follow the stream, checks the keys, then deletes the rows that are not
    identical to a new row and inserts the new rows whose key is no longer there. Tables
    without a key, tables whose key or column types change, and snapshots that changed most
    rows (`replace_all` None: estimated from a sample) are replaced whole.
    """
    started = time.monotonic()
    target = relation(schema, table)
    connection.execute(sql.SQL("lock table {} in share row exclusive mode").format(target))
    info = read_table(connection, schema, table)
    if info is None:
        raise LoadError(f"table {table}: {schema}.{table} was dropped during the load; nothing was changed")
    retyped = [name for name, column in columns.items() if name in info.columns and info.columns[name] != column.sql]
    key_changes = tuple(keys) != info.primary_key
    _size_memory(connection, loaded)
    if keys:
        # Statistics of the key columns are what the planner needs to join by key, and they say
        # whether the rows are in key order (a temp table has none): 0.15 s on 1M rows, against
        # 0.4 s for every column.
        connection.execute(sql.SQL("analyze {} ({})").format(loaded, _names(keys)))
    deleted = 0
    if retyped or key_changes:
        # The rows are replaced anyway: emptied first, the type change needs no conversion
        # (USING NULL) and the new key is built on an empty table.
        deleted = connection.execute(sql.SQL("delete from {}").format(target)).rowcount
    _follow_columns(connection, target, info, columns, keys, retyped, key_changes=key_changes)
    names = _names(columns)
    insert = sql.SQL("insert into {} ({}) select {} from {} n").format(target, names, _names(columns, "n"), loaded)
    same_key = sql.SQL(" and ").join(sql.SQL("n.{0} = s.{0}").format(sql.Identifier(name)) for name in keys)
    identical = _identical(columns, keys, [name for name in info.columns if name not in columns])
    if not keys or retyped or key_changes:
        replace_all = True
    elif replace_all is None:
        replace_all = rows >= SAMPLE_FROM_ROWS and \
            _changed_share(connection, target, loaded, same_key, identical, rows) > REPLACE_ALL_SHARE
    if replace_all:
        if not (retyped or key_changes):
            deleted = connection.execute(sql.SQL("delete from {}").format(target)).rowcount
        # Into an emptied table, the primary key itself refuses a duplicate key.
        inserted = connection.execute(insert).rowcount
        logger.info("%s: replaced whole in %.1f s", table, time.monotonic() - started)
        return MergeResult(deleted, inserted)
    # A unique index on the new rows' key refuses a duplicate key (its error names one; the
    # insert below would skip it silently) and is the merge join's second input in key order.
    connection.execute(sql.SQL("create unique index on {} ({})").format(loaded, _names(keys)))
    # In key order, the planner's costs still prefer a hash join, measured 3x slower (see above);
    # set for each merge (SET LOCAL lasts until the commit).
    ordered = _in_key_order(connection, target, loaded, keys[0])
    connection.execute(sql.SQL("set local enable_hashjoin = {}").format(sql.SQL("off" if ordered else "on")))
    deleted = connection.execute(sql.SQL("delete from {} s where not exists (select from {} n where {} and {})").format(
        target, loaded, same_key, identical)).rowcount
    # Every row left has a distinct key and an identical new row: when as many rows are left as
    # came, there is nothing to insert (the count costs 0.1 s on 1M rows, the insert's anti-join 1.2 s).
    left = connection.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()
    inserted = 0
    if not left or left[0] != rows:
        inserted = connection.execute(insert + sql.SQL(" where not exists (select from {} s where {})").format(
            target, same_key)).rowcount
    logger.info("%s: diff by key in %.1f s (%s)", table, time.monotonic() - started,
                "both tables in key order: merge join" if ordered else "hash join")
    return MergeResult(deleted, inserted)


def _follow_columns(connection: psycopg.Connection, target: sql.Composable, info: TableInfo,
                    columns: t.Mapping[str, ColumnType], keys: t.Sequence[str], retyped: t.Sequence[str], *,
                    key_changes: bool) -> None:
    """One ALTER TABLE: new columns, new types (the table is empty then), the new key, and NULL
    allowed everywhere else (the stream decides what is null; gone columns become null)."""
    actions: list[sql.Composable] = []
    if key_changes and info.constraint:
        actions.append(sql.SQL("drop constraint {}").format(sql.Identifier(info.constraint)))
    actions += [sql.SQL("add column {} {}").format(sql.Identifier(name), sql.SQL(column.sql))
                for name, column in columns.items() if name not in info.columns]
    actions += [sql.SQL("alter column {} type {} using null").format(sql.Identifier(name), sql.SQL(columns[name].sql))
                for name in retyped]
    actions += [sql.SQL("alter column {} drop not null").format(sql.Identifier(name))
                for name in sorted(info.not_null) if name not in keys]
    if key_changes and keys:
        actions.append(sql.SQL("add primary key ({})").format(_names(keys)))
    if actions:
        connection.execute(sql.SQL("alter table {} ").format(target) + sql.SQL(", ").join(actions))
