"""One load step: `meltano run <extractor> <loader>` bracketed by the project's report.

Before the load the step remembers its tables' keys (elt.report's snapshot, of its own tables
only, so that loads of one run can go at once); after it, each table's rows, keys added and
deleted, its primary key and its orphans become the asset's metadata and checks. The orphans are
counted for the relations the loader recorded with this load's tables (those the run really had);
a declared check whose relation the load did not record says so. A transient
database fault (what `wiserock-elt run` reruns for) is retried after a delay; others fail in one line.
"""

from __future__ import annotations

import os
import socket
import typing as t

import dagster as dg
import psycopg

from elt.database import connect
from elt.report import NO_RELATIONS_RECORDED, Relation, Report, TableChange, change_lines, orphan_lines
from elt.run import ATTEMPTS, RETRY_WAIT_SECONDS, TRANSIENT_DATABASE_ERROR
from elt.settings import Database
from wiserock_dagster import meltano_run
from wiserock_dagster.project import STAGING_DATABASE_SETTINGS, Load, project_root, settings

if t.TYPE_CHECKING:
    from wiserock_dagster.tables import StagingTable

_STOPPING = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def retry_or_fail(context: dg.AssetExecutionContext, transient: str, database: Database) -> t.NoReturn:
    """Rerun the step after a delay while attempts remain (as `wiserock-elt run` does), else fail."""
    attempt = context.retry_number + 1
    if attempt < ATTEMPTS:
        wait = RETRY_WAIT_SECONDS[min(attempt - 1, len(RETRY_WAIT_SECONDS) - 1)]
        context.log.warning(f"the database at {database.label} failed ({transient}); rerunning this load in {wait} s "
                            f"(attempt {attempt + 1} of {ATTEMPTS})")
        raise dg.RetryRequested(max_retries=ATTEMPTS - 1, seconds_to_wait=wait)
    raise dg.Failure(f"the database at {database.label} kept failing ({transient}) after {ATTEMPTS} attempts; "
                     "the load changed nothing", allow_retries=False)


def primary_key_check(table: StagingTable, keys: list[str] | None) -> dg.AssetCheckResult:
    """The table has a primary key (PostgreSQL then guarantees its rows unique and not null), the one configured."""
    if not keys:
        return dg.AssetCheckResult(check_name="primary_key", asset_key=table.name, passed=False,
                                   severity=dg.AssetCheckSeverity.WARN,
                                   description="no primary key: its rows cannot be told apart (set the source's key)")
    expected = list(table.keys) if table.keys else None
    passed = expected is None or expected == keys
    return dg.AssetCheckResult(check_name="primary_key", asset_key=table.name, passed=passed,
                               metadata={"primary key": ", ".join(keys),
                                         "configured": ", ".join(expected) if expected else "(the source's)"},
                               description=None if passed else f"primary key ({', '.join(keys)}) is not the "
                                                               f"configured ({', '.join(expected or [])})")


def orphan_check(relation: Relation, name: str, orphans: t.Mapping[Relation, int | str] | None) -> dg.AssetCheckResult:
    """Every child row has its parent. Not checked (a warning, saying why): the loader recorded no
    relations, or not this one, or a table or column of it is missing."""
    found = NO_RELATIONS_RECORDED if orphans is None else orphans.get(
        relation, "not checked: this load did not report this relation (its source or settings changed since the code "
                  "location loaded: reload it)")
    if isinstance(found, str):
        return dg.AssetCheckResult(check_name=name, asset_key=relation.child, passed=False,
                                   severity=dg.AssetCheckSeverity.WARN, metadata={"relation": str(relation)},
                                   description=found)
    return dg.AssetCheckResult(check_name=name, asset_key=relation.child, passed=found == 0,
                               severity=dg.AssetCheckSeverity.WARN, metadata={"orphans": found, "relation": str(relation)})


def unchecked(table: StagingTable, reason: str) -> t.Iterator[dg.AssetCheckResult]:
    """The checks of a table the load did not write: failed (a warning), saying why."""
    for name in ["primary_key", *table.check_names().values()]:
        yield dg.AssetCheckResult(check_name=name, asset_key=table.name, passed=False,
                                  severity=dg.AssetCheckSeverity.WARN, description=reason)


def _change_metadata(change: TableChange, database: Database, table: str) -> dict[str, t.Any]:
    metadata: dict[str, t.Any] = {"rows": change.rows, "dagster/row_count": change.rows,
                                  "dagster/table_name": f"{database.schema}.{table}"}
    if change.added is not None:
        metadata.update(added=change.added, deleted=change.deleted)
    return metadata


def _column_schema(connection: psycopg.Connection, schema: str, table: str) -> dg.TableSchema:
    rows = connection.execute("select column_name, data_type from information_schema.columns "
                              "where table_schema = %s and table_name = %s order by ordinal_position",
                              (schema, table)).fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in rows])


class LoadStep:
    """What one load step does; `run` yields the assets' results."""

    def __init__(self, context: dg.AssetExecutionContext, load: Load, tables: t.Sequence[StagingTable]) -> None:
        self.context = context
        self.load = load
        self.tables = list(tables)
        self.root = project_root()
        self.env = settings(self.root)

    def database(self) -> Database:
        missing = [key for key in STAGING_DATABASE_SETTINGS if not self.env.get(key)]
        if missing:
            raise dg.Failure(f"{', '.join(missing)} not set on {socket.gethostname()}: every machine that runs loads "
                             "needs the .env keys of the staging tables' database (it never starts one of its own)",
                             allow_retries=False)
        return Database.from_env(self.env)

    def cancelled(self) -> bool:
        run = self.context.instance.get_run_by_id(self.context.run.run_id)
        return run is None or run.status in _STOPPING

    def run(self) -> t.Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        database = self.database()
        names = [table.name for table in self.tables]
        self.context.log.info(f"meltano run {' '.join(self.load.args)} in {self.root} on {socket.gethostname()} "
                              f"(pid {os.getpid()}), into {database.label} schema {database.schema}")
        try:
            with connect(database) as connection:
                Report(connection, database.schema).snapshot(names)
        except psycopg.Error as exc:
            self._database_error(exc, database)
        outcome = meltano_run.run(self.load.args, project_root=self.root, env={**os.environ, **self.env},
                                  log=self.context.log.info, should_stop=self.cancelled)
        if outcome.stopped:
            raise dg.Failure("the run was cancelled: Meltano, the tap and the loader were stopped; the load changed nothing",
                             allow_retries=False)
        if outcome.code != 0:
            if outcome.refused:
                raise dg.Failure(f"Meltano sees another run of {' '.join(self.load.args)} going ({meltano_run.REFUSED}); "
                                 "this run changed nothing", allow_retries=False)
            if outcome.transient:
                retry_or_fail(self.context, outcome.transient, database)
            raise dg.Failure(outcome.error, metadata={"exit status": outcome.code}, allow_retries=False)
        try:
            yield from self._results(database)
        except psycopg.Error as exc:
            self._database_error(exc, database)

    def _database_error(self, exc: psycopg.Error, database: Database) -> t.NoReturn:
        message = _one_line(str(exc))
        if match := TRANSIENT_DATABASE_ERROR.search(message):
            retry_or_fail(self.context, match[0], database)
        raise dg.Failure(f"PostgreSQL at {database.label}: {message}", allow_retries=False) from None

    def _results(self, database: Database) -> t.Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        names = [table.name for table in self.tables]
        with connect(database) as connection:
            report = Report(connection, database.schema)
            keys = report.staging_tables(names)
            changes = report.changes(names)
            recorded = report.relations(names)
            orphans = None if recorded is None else report.orphans(recorded)
            for table in self.tables:
                if table.name not in changes:
                    gone = (f"{table.name}: not written by this load (is its source gone? reload the code location "
                            "after changing meltano.yml or the data files)")
                    self.context.log.warning(gone)
                    yield from unchecked(table, gone)
                    continue
                checks = [primary_key_check(table, keys.get(table.name))]
                checks += [orphan_check(relation, name, orphans) for relation, name in table.check_names().items()]
                metadata = _change_metadata(changes[table.name], database, table.name)
                metadata["dagster/column_schema"] = _column_schema(connection, database.schema, table.name)
                yield dg.MaterializeResult(asset_key=table.name, metadata=metadata, check_results=checks)
        declared = {relation for table in self.tables for relation in table.relations}
        unexpected = [f"  {relation}: recorded by this load, but no asset check of the code location (reload it)"
                      for relation in recorded or [] if relation not in declared]
        self.context.log.info("\n".join([f"load summary, schema {database.schema}:", *change_lines(changes),
                                         *orphan_lines(orphans), *unexpected]))
