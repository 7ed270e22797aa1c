"""`wiserock-report`: the Meltano utility that brackets each load of the job.

`snapshot` (first task) remembers each staging table's keys; `summary` (last task) prints
rows per table, rows added and deleted since the snapshot, orphans per relation of the loaded
tables, the duration and where the logs are.

The relations are those the taps sent with their streams (from the API's description or the
taps' `references` settings), as the project's loader recorded them in the transaction that
loaded the tables (target-wiserock-postgres's README, "Relations"): never a list in code.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import typing as t

import psycopg
from psycopg import sql

from elt.database import connect
from elt.settings import Database, project_env

TABLE_PREFIX = "stg_wiserock_"
LOG_FILE = "logs/meltano.log"
# Where target-wiserock-postgres records the relations of the tables it loads, in their schema.
RELATIONS_TABLE = "_loader_relations"
NO_RELATIONS_RECORDED = ("not checked: the loader recorded no relations (target-wiserock-postgres records those the "
                         "taps send; other loaders do not)")


@dataclasses.dataclass(frozen=True)
class Relation:
    child: str
    column: str
    parent: str
    key: str

    def __str__(self) -> str:
        return f"{self.child}.{self.column} -> {self.parent}.{self.key}"


@dataclasses.dataclass(frozen=True)
class TableChange:
    rows: int
    added: int | None  # keys new since the snapshot; None: unknown (no snapshot of the table)
    deleted: int | None


class Report:
    def __init__(self, connection: psycopg.Connection, schema: str) -> None:
        self.connection = connection
        self.schema = schema
        self.meta_schema = f"{schema}_elt"  # the report's own bookkeeping, out of analysts' way

    def staging_tables(self, names: t.Iterable[str] | None = None) -> dict[str, list[str]]:
        """Staging tables (those of `names` that exist, else every `stg_wiserock_*` table) and their
        primary key columns."""
        where = sql.SQL("c.relname = any(%s)") if names is not None else sql.SQL("c.relname like %s")
        rows = self.connection.execute(sql.SQL(
            """select c.relname, coalesce(array_agg(a.attname order by k.ord)
                       filter (where a.attname is not null), '{{}}')
               from pg_class c
               join pg_namespace n on n.oid = c.relnamespace
               left join pg_index i on i.indrelid = c.oid and i.indisprimary
               left join lateral unnest(i.indkey) with ordinality k(attnum, ord) on true
               left join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
               where n.nspname = %s and c.relkind = 'r' and {}
               group by c.relname order by c.relname""").format(where),
            (self.schema, list(names) if names is not None else TABLE_PREFIX.replace("_", r"\_") + "%"),
        ).fetchall()
        return {name: list(keys) for name, keys in rows}

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def _run_table(self) -> sql.Identifier:
        return sql.Identifier(self.meta_schema, "run")  # when the last snapshot was taken

    def _keys_table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.meta_schema, f"keys_{name}")

    def snapshot(self, tables: t.Iterable[str] | None = None) -> None:
        """Remember the keys of the staging tables (of `tables` only, when given)."""
        with self.connection.transaction():
            # Loads of one run may snapshot their own tables at the same time (Dagster's steps):
            # CREATE ... IF NOT EXISTS is not safe against a concurrent twin.
            self.connection.execute("select pg_advisory_xact_lock(hashtext(%s))", (self.meta_schema,))
            self.connection.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(self.meta_schema)))
            self.connection.execute(sql.SQL("create table if not exists {} (started_at timestamptz not null)")
                                    .format(self._run_table()))
            self.connection.execute(sql.SQL("delete from {}").format(self._run_table()))
            self.connection.execute(sql.SQL("insert into {} values (now())")
                                    .format(self._run_table()))
        for table, keys in self.staging_tables(tables).items():
            if not keys:
                continue
            self.connection.execute(sql.SQL("drop table if exists {}").format(self._keys_table(table)))
            self.connection.execute(sql.SQL("create unlogged table {} as select {} from {}").format(
                self._keys_table(table), sql.SQL(", ").join(map(sql.Identifier, keys)), self._table(table)))

    def changes(self, tables: t.Iterable[str] | None = None) -> dict[str, TableChange]:
        """Rows of each staging table (of `tables` only, when given), and the keys added and deleted
        since the snapshot (None where unknown); the snapshot of those tables is dropped."""
        found = {}
        snapshot_taken = self._exists(self.meta_schema, "run")
        for table, keys in self.staging_tables(tables).items():
            rows = self._count(sql.SQL("select count(*) from {}").format(self._table(table)))
            added = deleted = None
            if not self._exists(self.meta_schema, f"keys_{table}"):
                if snapshot_taken:  # the table is new since the snapshot
                    added, deleted = rows, 0
            elif keys:
                match = sql.SQL(" and ").join(sql.SQL("s.{0} = t.{0}").format(sql.Identifier(k)) for k in keys)
                deleted = self._count(sql.SQL("select count(*) from {} s where not exists (select 1 from {} t where {})")
                                      .format(self._keys_table(table), self._table(table), match))
                added = self._count(sql.SQL("select count(*) from {} t where not exists (select 1 from {} s where {})")
                                    .format(self._table(table), self._keys_table(table), match))
                self.connection.execute(sql.SQL("drop table {}").format(self._keys_table(table)))
            found[table] = TableChange(rows, added, deleted)
        return found

    def table_lines(self) -> list[str]:
        return change_lines(self.changes())

    def relations(self, tables: t.Iterable[str] | None = None) -> list[Relation] | None:
        """The relations the loader recorded (of the child tables among `tables`, when given); None
        when it never recorded any in this schema (another loader)."""
        if not self._exists(self.schema, RELATIONS_TABLE):
            return None
        where = sql.SQL("") if tables is None else sql.SQL("where child_table = any(%s)")
        rows = self.connection.execute(sql.SQL(
            "select child_table, child_column, parent_table, parent_column from {} {} order by 1, 2, 3, 4").format(
            self._table(RELATIONS_TABLE), where), None if tables is None else (list(tables),)).fetchall()
        return [Relation(*row) for row in rows]

    def orphans(self, relations: t.Iterable[Relation]) -> dict[Relation, int | str]:
        """Child rows whose parent is missing, per relation; for a relation whose table or column
        the staging tables lack (a table dropped since, a column gone), what is missing."""
        found: dict[Relation, int | str] = {}
        for relation in relations:
            if missing := self._missing(relation):
                found[relation] = f"not checked ({missing} is missing)"
                continue
            found[relation] = self._count(sql.SQL(
                "select count(*) from {} c where c.{} is not null and not exists "
                "(select 1 from {} p where p.{} = c.{})").format(
                self._table(relation.child), sql.Identifier(relation.column), self._table(relation.parent),
                sql.Identifier(relation.key), sql.Identifier(relation.column)))
        return found

    def _missing(self, relation: Relation) -> str | None:
        """The first of the relation's tables and columns that does not exist, named; None when all do."""
        for table, column in ((relation.child, relation.column), (relation.parent, relation.key)):
            if not self._exists(self.schema, table):
                return f"table {table}"
            if not self.connection.execute(
                    "select 1 from pg_attribute where attrelid = to_regclass(%s) and attname = %s and attnum > 0 "
                    "and not attisdropped", (sql.Identifier(self.schema, table).as_string(self.connection), column)
            ).fetchone():
                return f"column {table}.{column}"
        return None

    def duration_seconds(self) -> float | None:
        if not self._exists(self.meta_schema, "run"):
            return None
        row = self.connection.execute(sql.SQL("select extract(epoch from now() - started_at) from {}")
                                      .format(self._run_table())).fetchone()
        return float(row[0]) if row else None

    def _count(self, query: sql.Composed) -> int:
        return int(self.connection.execute(query).fetchone()[0])

    def _exists(self, schema: str, table: str) -> bool:
        return self.connection.execute("select to_regclass(%s) is not null",
                                       (sql.Identifier(schema, table).as_string(self.connection),)).fetchone()[0]


def change_lines(changes: t.Mapping[str, TableChange]) -> list[str]:
    """The summary's table: rows, keys added and deleted per table ('-' where unknown)."""
    lines = [f"  {'table':<34} {'rows':>10} {'added':>10} {'deleted':>10}"]
    for table, change in changes.items():
        added = "-" if change.added is None else change.added
        deleted = "-" if change.deleted is None else change.deleted
        lines.append(f"  {table:<34} {change.rows:>10} {added:>10} {deleted:>10}")
    return lines


def orphan_lines(orphans: t.Mapping[Relation, int | str] | None) -> list[str]:
    """The summary's orphans (None: the loader recorded no relations): a line per relation, or one
    line saying why there is none."""
    if orphans is None:
        return [f"  orphans: {NO_RELATIONS_RECORDED}"]
    if not orphans:
        return ["  orphans: none to count: no relations among these tables (README: Relations)"]
    return [f"  orphans: {relation}: {count}" for relation, count in orphans.items()]


def summary_text(report: Report, database: Database, log_file: pathlib.Path) -> str:
    lines = [f"WiseRock load summary: {database.label}, schema {database.schema}", *report.table_lines()]
    relations = report.relations()
    lines += orphan_lines(None if relations is None else report.orphans(relations))
    if duration := report.duration_seconds():
        lines.append(f"  duration: {duration:.1f} s")
    lines.append(f"  logs: {log_file}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wiserock-report", description=__doc__)
    parser.add_argument("command", choices=["snapshot", "summary"])
    args = parser.parse_args(argv)
    env = project_env(pathlib.Path(os.environ.get("MELTANO_PROJECT_ROOT", pathlib.Path.cwd())))
    if not env.get("DB_SCHEMA"):
        sys.exit("wiserock-report: error: DB_SCHEMA is not set (environment or .env): "
                 "the loader needs the schema of the staging tables")
    database = Database.from_env(env)
    try:
        with connect(database) as connection:
            report = Report(connection, database.schema)
            if args.command == "snapshot":
                report.snapshot()
            else:
                project = pathlib.Path(os.environ.get("MELTANO_PROJECT_ROOT", pathlib.Path.cwd()))
                print(summary_text(report, database, project / LOG_FILE), flush=True)
    except psycopg.Error as exc:
        sys.exit(f"wiserock-report: error: PostgreSQL at {database.label}: {' '.join(str(exc).split())}")


if __name__ == "__main__":
    main()
