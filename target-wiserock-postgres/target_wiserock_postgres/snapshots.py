"""Unchanged reruns: a table that already holds exactly the run's snapshot is not merged.

While a stream's rows are COPYed, the loader hashes the COPY data (sha256 over the exact bytes,
in order, each COPY's format and columns first). At the commit, in the run's transaction, it
writes into `<schema>._loader_snapshots` each loaded table's digest and its signature: the
stream's columns, types and key, and the table as it is after the load (oid, file node, columns,
types, not-null columns, key, the guard trigger). Every staging table gets that guard: a
statement-level trigger, fired by any INSERT, UPDATE, DELETE, TRUNCATE, COPY or MERGE, that
deletes the table's row (transactional: a rolled-back write leaves it). The loader's own writes
fire it too; its row is written after them.

The next run skips the merge of a table only when the table's row is there, its digest equals
the run's and its signature equals the run's stream and the table as it is now (DDL fires no
trigger: ALTER TABLE changes the columns, a rewrite the file node, dropping and creating the
table the oid, disabling the trigger its state). Any doubt means merging as before: a stream
that changed its SCHEMA during the run or was sent again as its next version has no digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import typing as t

import psycopg
from psycopg import sql

from target_wiserock_postgres import tables

if t.TYPE_CHECKING:
    from target_wiserock_postgres.sinks import StreamLoad

SNAPSHOTS_TABLE = "_loader_snapshots"
GUARD = "_loader_snapshot_changed"  # the trigger and its function
FORMAT = 1  # of the digest and signature: another version of them never matches an older row
GUARD_BODY = "begin delete from {snapshots} where table_oid = tg_relid; return null; end"

logger = logging.getLogger("target-wiserock-postgres")


class Digest(t.Protocol):
    """What the loader needs of a hashlib hash."""

    def update(self, data: t.Any, /) -> None: ...

    def hexdigest(self) -> str: ...


def new_digest() -> Digest:
    # sha256: about 1 GB/s here with the CPU's SHA instructions, twice blake2b's speed.
    return hashlib.sha256()


def copy_header(columns: t.Sequence[str], *, csv: bool) -> bytes:
    """What starts each COPY's data in the digest: its format and columns. The NUL bytes never
    occur in COPY data (text cannot hold them), so the header is never confused with rows."""
    return b"\0" + json.dumps(["csv" if csv else "text", list(columns)]).encode() + b"\0"


def _body(schema: str) -> str:
    return GUARD_BODY.format(snapshots=sql.Identifier(schema, SNAPSHOTS_TABLE).as_string(None))


def _signature(connection: psycopg.Connection, schema: str, load: StreamLoad) -> tuple[int, str] | None:
    """The table's oid, and the stream's columns, types and key and the table as it is now, as
    text; None when the table cannot be trusted to change only through guarded writes (no
    enabled guard, inheritance)."""
    target = tables.relation(schema, load.table)
    found = connection.execute(sql.SQL(
        "select c.oid::int8, c.relfilenode::int8, c.relhassubclass, g.tgenabled, g.xmin::text, p.xmin::text, "
        "p.prosrc = {body}, current_setting('DateStyle'), current_setting('server_version_num') "
        "from pg_class c left join pg_trigger g on g.tgrelid = c.oid and g.tgname = {guard} "
        "left join pg_proc p on p.oid = g.tgfoid where c.oid = {table}::regclass").format(
            body=sql.Literal(_body(schema)), guard=sql.Literal(GUARD),
            table=sql.Literal(target.as_string(connection)))).fetchone()
    info = tables.read_table(connection, schema, load.table)
    if found is None or info is None:
        return None
    oid, filenode, children, enabled, trigger_xmin, function_xmin, our_body, datestyle, version = found
    if children or enabled != "A" or not our_body:  # "A": fires always, in replica sessions too
        return None
    return oid, json.dumps({
        "format": FORMAT, "stream": [[name, column.sql, column.kind.value] for name, column in load.columns.items()],
        "keys": load.keys, "table": [oid, filenode, sorted(info.columns.items()), sorted(info.not_null),
                                     list(info.primary_key)],
        "guard": [trigger_xmin, function_xmin], "session": [datestyle, version]})


def _exists(connection: psycopg.Connection, schema: str) -> bool:
    table = sql.Identifier(schema, SNAPSHOTS_TABLE).as_string(connection)
    return connection.execute("select to_regclass(%s)", (table,)).fetchone()[0] is not None  # type: ignore[index]


def unchanged(connection: psycopg.Connection, schema: str, load: StreamLoad) -> bool:
    """The table holds exactly the run's snapshot of it: the last run recorded the same digest and
    signature, and nothing wrote to the table since. Locks the table as the merge does first:
    a writer still in progress is waited for, and its removal of the row is then seen."""
    if load.digest is None or not _exists(connection, schema):
        return False
    connection.execute(sql.SQL("lock table {} in share row exclusive mode").format(tables.relation(schema, load.table)))
    found = connection.execute(sql.SQL("select digest, signature from {} where table_name = %s").format(
        sql.Identifier(schema, SNAPSHOTS_TABLE)), (load.table,)).fetchone()
    if found is None:
        return False
    signature = _signature(connection, schema, load)
    return signature is not None and found == (load.digest.hexdigest(), signature[1])


def record(connection: psycopg.Connection, schema: str, loads: t.Iterable[StreamLoad]) -> None:
    """Write the digest and signature of each of the run's tables that has a digest, after its
    load (the loader's writes removed the rows); the others' rows are removed. Nothing is created
    for a run without digests when there is no table yet."""
    loads = list(loads)
    if not any(load.digest for load in loads) and not _exists(connection, schema):
        return
    try:
        # A savepoint: a role that may load the tables but not create these keeps loading as
        # before. Safe: the loader's writes fired the guards, so no stale row is left behind.
        with connection.transaction():
            _record(connection, schema, loads)
    except psycopg.errors.InsufficientPrivilege as exc:
        logger.info("unchanged reruns are merged: the loader cannot record snapshots in %s.%s (%s)", schema,
                    SNAPSHOTS_TABLE, str(exc).splitlines()[0])


def _record(connection: psycopg.Connection, schema: str, loads: list[StreamLoad]) -> None:
    table = sql.Identifier(schema, SNAPSHOTS_TABLE)
    _create(connection, schema)
    connection.execute(sql.SQL("delete from {} where table_name = any(%s)").format(table),
                       ([load.table for load in loads],))
    rows = []
    for load in loads:
        if load.digest is None or not _guard(connection, schema, load.table):
            continue
        if (signature := _signature(connection, schema, load)) is not None:
            rows.append((load.table, signature[0], load.digest.hexdigest(), signature[1]))
    with connection.cursor() as cursor:
        cursor.executemany(sql.SQL("insert into {} (table_name, table_oid, digest, signature) values (%s, %s, %s, %s)")
                           .format(table), rows)


def _guard(connection: psycopg.Connection, schema: str, table: str) -> bool:
    """The table has the guard trigger, enabled always: created when missing, enabled again when
    someone disabled it. A table the loader's role does not own cannot get one: it is merged on
    every run, as before (logged, the load goes on)."""
    target = tables.relation(schema, table)
    found = connection.execute("select tgenabled from pg_trigger where tgrelid = %s::regclass and tgname = %s",
                               (target.as_string(connection), GUARD)).fetchone()
    if found and found[0] == "A":
        return True
    try:
        with connection.transaction():
            if not found:
                connection.execute(sql.SQL(
                    "create trigger {guard} after insert or update or delete or truncate on {table} "
                    "for each statement execute function {function}()").format(
                        guard=sql.Identifier(GUARD), table=target, function=sql.Identifier(schema, GUARD)))
            connection.execute(sql.SQL("alter table {} enable always trigger {}").format(target, sql.Identifier(GUARD)))
    except psycopg.errors.InsufficientPrivilege as exc:
        logger.info("%s: no trigger can watch it for writes (%s); it is merged on every run", table,
                    str(exc).splitlines()[0])
        return False
    return True


def _create(connection: psycopg.Connection, schema: str) -> None:
    """The table and the guard's function, when missing. Another run creating them at the same
    time (two loads into one schema on two workers): ours waits for that run's transaction and is
    undone to its savepoint when that run committed them."""
    table = sql.Identifier(schema, SNAPSHOTS_TABLE)
    function = sql.Identifier(schema, GUARD)
    with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable), connection.transaction():
        connection.execute(sql.SQL(
            "create table if not exists {} (table_name text primary key, table_oid oid not null, "
            "digest text not null, signature text not null, loaded_at timestamptz not null default now())").format(table))
    if connection.execute("select to_regprocedure(%s)", (f"{function.as_string(connection)}()",)).fetchone()[0]:  # type: ignore[index]
        return
    # Security definer: a role that may write a staging table but not the loader's table still can
    # (its write would fail otherwise); the search path is fixed, as for any such function.
    with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateFunction), connection.transaction():
        connection.execute(sql.SQL(
            "create function {}() returns trigger language plpgsql security definer "
            "set search_path = pg_catalog, pg_temp as {}").format(function, sql.Literal(_body(schema))))
