"""One run of the loader: one connection, one transaction, every stream's snapshot, one commit."""

from __future__ import annotations

import logging
import time
import typing as t

import psycopg
from psycopg import sql

from target_wiserock_postgres import names, relations, snapshots, tables
from target_wiserock_postgres.connector import ConnectionSettings, explain
from target_wiserock_postgres.errors import LoadError, RecordBeforeSchemaError, shorten
from target_wiserock_postgres.sinks import CopyFeeder, StreamLoad
from target_wiserock_postgres.types import ColumnType, column_type

if t.TYPE_CHECKING:
    import collections
    import pathlib

    from target_wiserock_postgres.batch_roots import BatchRoots

logger = logging.getLogger("target-wiserock-postgres")


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


class LoadRun:
    """Streams' rows go into tables only this transaction sees; `finish` merges and commits them all
    at once, and only when every stream that started has completed. Anything else rolls back."""

    def __init__(self, settings: ConnectionSettings, schema: str, batch_roots: BatchRoots, *,
                 complete_at_end: bool) -> None:
        self.settings = settings
        self.schema = names.checked_identifier(schema, "default_target_schema")
        self.batch_roots = batch_roots
        self.complete_at_end = complete_at_end
        self.loads: dict[str, StreamLoad] = {}
        self.references: dict[str, list[relations.StreamReference]] = {}  # stream -> what its SCHEMA said
        self._streams_of_tables: dict[str, str] = {}  # table -> the stream loading into it
        self.started = time.monotonic()
        self.committing = False
        self._connection: psycopg.Connection | None = None
        self._feeder: CopyFeeder | None = None
        self._files: set[pathlib.Path] = set()  # the loader's own batch files not deleted yet
        self._told_kept = False  # that batch files outside batch_roots are kept
        self._merging: str | None = None  # the staging table being merged, for error messages

    def _connect(self) -> tuple[psycopg.Connection, CopyFeeder]:
        if self._connection is None or self._feeder is None:
            self._connection = self.settings.connect()
            self._feeder = CopyFeeder(self._connection)
            tables.ensure_schema(self._connection, self.schema)
        return self._connection, self._feeder

    def explain(self, exc: psycopg.Error) -> LoadError:
        return explain(exc, self.settings, self._feeder.copying if self._feeder else None, self._merging)

    # Messages

    def start_stream(self, stream: t.Any, schema: t.Any, keys: t.Any, references: t.Any = None) -> None:
        """A SCHEMA message: a new stream gets its loading table; a known one follows the change.
        Its references (relations.py), when it has some, replace the stream's earlier ones."""
        if not isinstance(stream, str):
            raise LoadError(f"a SCHEMA message has no stream name: {shorten(stream)}")
        table = self._table_of(stream)
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(properties, dict) or not properties:
            raise LoadError(f"stream {stream!r}: its SCHEMA has no properties: {shorten(schema)}")
        load = self.loads.get(stream)
        column_of = names.column_names(stream, table, properties, load.column_of if load else None)
        columns = {column_of[name]: column_type(prop if isinstance(prop, dict) else {}) for name, prop in properties.items()}
        keys = list(keys or [])
        if missing := [key for key in keys if key not in column_of]:
            raise LoadError(f"stream {stream!r}: key properties {', '.join(map(repr, missing))} are not in its SCHEMA")
        keys = [column_of[key] for key in keys]
        if (found := relations.read_references(stream, references)) is not None:
            self.references[stream] = found
        connection, feeder = self._connect()
        feeder.end()  # one statement at a time: no other query while a COPY runs
        if load is None:
            self.loads[stream] = self._new_load(connection, feeder, stream, table, columns, column_of, keys)
            return
        if keys == load.keys and all(load.columns.get(name) == column for name, column in columns.items()):
            return
        logger.info("%s: the SCHEMA changed during the run; the rows loaded so far follow it", table)
        feeder.flush(load)
        load.follow(columns, column_of, keys)

    def _table_of(self, stream: str) -> str:
        """The stream's table; two streams whose names shorten to the same table are refused."""
        table = names.table_name(stream)
        if table == relations.RELATIONS_TABLE:
            raise LoadError(f"stream {stream!r}: its table would be {table}, where the loader records the relations "
                            "of the tables it loads; rename the stream in the tap or a stream map")
        if table == snapshots.SNAPSHOTS_TABLE:
            raise LoadError(f"stream {stream!r}: its table would be {table}, where the loader records the snapshots "
                            "of the tables it loads; rename the stream in the tap or a stream map")
        other = self._streams_of_tables.setdefault(table, stream)
        if other != stream:
            raise LoadError(f"streams {other!r} and {stream!r} would both load table {table} (names over "
                            f"{names.MAX_IDENTIFIER_BYTES} bytes are shortened); rename one in the tap or a stream map")
        if table != stream and stream not in self.loads:
            logger.info("stream %r is longer than %d bytes; its table is %s", stream, names.MAX_IDENTIFIER_BYTES, table)
        return table

    def _new_load(self, connection: psycopg.Connection, feeder: CopyFeeder, stream: str, table: str,
                  columns: dict[str, ColumnType], column_of: dict[str, str], keys: list[str]) -> StreamLoad:
        existed = tables.read_table(connection, self.schema, table) is not None
        if existed:
            name = f"wr_load_{len(self.loads) + 1}"
            target: sql.Composable = sql.Identifier(name)
            logger.info("%s: loading into a temporary table, merged at the end", table)
        else:
            name, target = table, tables.relation(self.schema, table)
            logger.info("%s: loading into a new table (visible at the end)", table)
        tables.create_table(connection, target, columns, keys, temporary=existed)
        return StreamLoad(stream, table, target, name, columns=columns, column_of=column_of, keys=keys, existed=existed,
                          feeder=feeder)

    def load_of(self, stream: t.Any, what: str) -> StreamLoad:
        load = self.loads.get(stream)  # type: ignore[arg-type]
        if load is None:
            raise RecordBeforeSchemaError(f"stream {shorten(stream)!r}: {what} before its SCHEMA (unknown stream)")
        return load

    def take_version(self, load: StreamLoad, version: t.Any) -> None:
        """The version a RECORD or BATCH message gives its rows. Another version than the rows' so
        far means the tap sends the stream again from its start (a full-table stream's next
        version): the rows received before are dropped, and the stream counts from the new ones."""
        if version is None or version == load.version:
            return
        if load.version is None:
            load.version = version
            return
        connection, feeder = self._connect()
        feeder.drop(load)
        connection.execute(sql.SQL("truncate {}").format(load.relation))  # created in this transaction
        logger.info("%s: the tap sends stream %r again, as version %s: the %s of version %s received before are "
                    "dropped", load.table, load.stream, shorten(version), _plural(load.rows, "row"), shorten(load.version))
        load.restart(version)

    def activate(self, stream: t.Any, version: t.Any) -> None:
        """ACTIVATE_VERSION: the stream is complete, when it names the version of its rows."""
        load = self.load_of(stream, "ACTIVATE_VERSION")
        if version is not None and load.version is not None and version != load.version:
            raise LoadError(f"stream {shorten(stream)!r}: ACTIVATE_VERSION names version {shorten(version)}, but the "
                            f"stream's rows are version {shorten(load.version)}; nothing was changed")
        load.activate()

    def load_batch(self, stream: t.Any, encoding: t.Any, manifest: t.Any, version: t.Any = None) -> None:
        """A BATCH message: each file COPYed, then deleted when it is the loader's own (inside
        `batch_roots`). The loader's own files it names are deleted on failure too; a file
        outside `batch_roots` fails the run before any file of the message is read."""
        # Imported here: pyarrow costs 0.3 s and 75 MB of memory, which RECORD-only runs skip.
        from target_wiserock_postgres import batch

        files, problem = [], None
        for url in manifest if isinstance(manifest, list) else [manifest]:
            try:
                files.append(self.batch_roots.file(stream, url))
            except LoadError as exc:
                problem = problem or exc
        self._files.update(file.path for file in files if file.owned)
        load = self.load_of(stream, "BATCH")
        if problem:
            raise problem
        self.take_version(load, version)
        _, feeder = self._connect()
        load.batches += 1
        for file in files:
            batch.load_file(load, feeder, file.path, encoding)
            if file.owned:
                file.path.unlink(missing_ok=True)
                self._files.discard(file.path)
            elif not self._told_kept:
                self._told_kept = True
                logger.info("Batch files are read but not deleted: the setting batch_roots is not set (the loader "
                            "deletes only files inside its folders), e.g. %s", file.path)

    # End of input

    def incomplete_message(self) -> str | None:
        """None when every started stream completed, else the one line that says which did not and why."""
        if self.complete_at_end:
            return None
        never = [load.stream for load in self.loads.values() if load.activated_at is None]
        early = [load.stream for load in self.loads.values() if load.activated_at is not None and not load.complete]
        if not never and not early:
            return None
        names = ", ".join(repr(stream) for stream in never + early)
        reasons = []
        if never:
            reasons.append(f"no ACTIVATE_VERSION came for {', '.join(map(repr, never))} (the input ended early, or the "
                           "tap never sends it: enable the tap's emit_activate_version_messages, or set this loader's "
                           "complete_streams_at_end_of_input)")
        if early:
            reasons.append(f"records came after the ACTIVATE_VERSION of {', '.join(map(repr, early))} (a tap that sends "
                           "it at the start of a stream: set complete_streams_at_end_of_input)")
        noun = "streams" if len(never + early) > 1 else "stream"
        return f"{noun} {names} did not complete, so nothing was changed: {'; '.join(reasons)}"

    def finish(self, nul_removed: collections.Counter[str]) -> None:
        """Merge every stream into its staging table in table-name order, then COMMIT once."""
        if not self.loads:
            logger.info("No streams in the input: nothing to load.")
            return
        if problem := self.incomplete_message():
            raise LoadError(problem)
        connection, feeder = self._connect()
        for load in self.loads.values():
            feeder.flush(load)
            load.apply_schema(connection)
        results: dict[str, tuple[StreamLoad, tables.MergeResult, float]] = {}
        for load in sorted(self.loads.values(), key=lambda load: load.table):
            self._merging = load.table
            if load.existed and snapshots.unchanged(connection, self.schema, load):
                # The rows are known to be the table's already: the temp table's space is given back now.
                connection.execute(sql.SQL("drop table {}").format(load.relation))
                logger.info("%s: unchanged since the last run: not merged", load.table)
                result = tables.MergeResult(0, 0)
            elif load.existed:
                result = tables.merge_snapshot(connection, self.schema, load.table, load.relation, load.columns, load.keys,
                                              load.rows)
            else:
                tables.add_primary_key(connection, load.relation, load.keys)
                result = tables.MergeResult(0, load.rows)
            results[load.table] = (load, result, time.monotonic() - load.started)
        self._merging = None
        recorded = relations.record(connection, self.schema, self.loads, self.references)
        snapshots.record(connection, self.schema, self.loads.values())
        self.committing = True
        connection.commit()
        self._report(results, nul_removed)
        if recorded:
            logger.info("Recorded %s of these tables in %s.%s.", _plural(recorded, "relation"), self.schema,
                        relations.RELATIONS_TABLE)
        self._analyze(connection, [table for table, (_, result, _) in results.items() if result.deleted or result.inserted])
        self.close()

    def _report(self, results: dict[str, tuple[StreamLoad, tables.MergeResult, float]],
                nul_removed: collections.Counter[str]) -> None:
        for table, (load, result, seconds) in results.items():
            change = "new table" if not load.existed else f"{result.inserted:,} inserted, {result.deleted:,} deleted"
            logger.info("%s: %s in %.1f s (%s)", table, _plural(load.rows, "row"), seconds, change)
            if removed := load.nul_removed + nul_removed.get(load.stream, 0):
                logger.warning("%s: removed %s from text values (PostgreSQL text cannot hold them)", table,
                               _plural(removed, "NUL character"))
        total = sum(load.rows for load in self.loads.values())
        logger.info("Committed %s, %s in %.1f s, into schema %s at %s.", _plural(len(results), "table"),
                    _plural(total, "row"), time.monotonic() - self.started, self.schema, self.settings.label)

    def _analyze(self, connection: psycopg.Connection, changed: list[str]) -> None:
        """Fresh planner statistics for the tables whose rows changed; outside the transaction,
        it never blocks readers. Dead rows are left to autovacuum."""
        connection.autocommit = True
        for table in changed:
            connection.execute(sql.SQL("analyze {}").format(tables.relation(self.schema, table)))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def abort(self) -> None:
        """Roll back (closing the connection without COMMIT, the COPY running stopped first, so that
        nothing is left to report after the error line) and delete the loader's own batch files not
        deleted yet. Called again on the way out: does nothing then."""
        if self._feeder is not None:
            self._feeder.abandon()
        if self._connection is not None and not self._connection.closed:
            try:
                self._connection.close()
            except psycopg.Error:
                logger.debug("closing the connection failed", exc_info=True)
        for path in sorted(self._files):
            path.unlink(missing_ok=True)
        if self._files:
            logger.info("Deleted %s named by BATCH messages.", _plural(len(self._files), "batch file"))
        self._files.clear()
