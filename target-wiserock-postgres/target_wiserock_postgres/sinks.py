"""Per-stream state of a run (columns, completion, counters) and the connection's one live COPY.

Why not singer-sdk's `Sink`: a Sink buffers records, drains them in batches from up to eight
threads, validates, adds `_sdc_*` metadata and handles ACTIVATE_VERSION by versions and soft
deletes. None of that applies here: rows go straight into the run's single transaction with
COPY, and a stream's completion is only bookkeeping. Subclassing Sink would leave all of that
machinery dead, so a stream's state is this small class instead.
"""

from __future__ import annotations

import contextlib
import decimal
import logging
import queue
import threading
import time
import typing as t

import msgspec
from psycopg import sql
from psycopg.copy import LibpqWriter

from target_wiserock_postgres import snapshots, tables
from target_wiserock_postgres.connector import CopyTarget
from target_wiserock_postgres.types import ColumnType, Kind

if t.TYPE_CHECKING:
    import psycopg

# Rows a stream that is not the live COPY holds before it takes the COPY over. Streams that
# interleave (parent and child records alternating) then cost one COPY switch per this many
# rows, and the memory held stays bounded (at most this many rows per stream).
BUFFER_ROWS = 1000
PROGRESS_EVERY_ROWS = 1 << 14  # how often the clock is looked at
PROGRESS_SECONDS = 10.0

logger = logging.getLogger("target-wiserock-postgres")
_json = msgspec.json.Encoder(decimal_format="number")
astuple = msgspec.structs.astuple


def json_text(value: t.Any) -> str:
    return _json.encode(value).decode()


def record_message_decoder(properties: t.Sequence[str]) -> msgspec.json.Decoder | None:
    """Decodes a RECORD line of one stream straight into its properties' values, in column order:
    no dict per record, and fields the stream does not have are skipped unread. None when a
    property's name is one msgspec cannot map: that stream's records take the dict path."""
    fields = {f"c{i}": name for i, name in enumerate(properties)}
    try:
        row = msgspec.defstruct("Row", [(field, t.Any, None) for field in fields], rename=fields)
    except ValueError:  # "Renamed field names must not contain '\\', '"', or control characters"
        return None
    message = msgspec.defstruct("RecordMessage", [("type", str), ("stream", t.Any), ("record", row),
                                                  ("version", t.Any, None)])
    return msgspec.json.Decoder(message, float_hook=decimal.Decimal)


class StreamLoad:
    """One stream of this run: where its rows go, its columns, whether it completed, its counts."""

    def __init__(self, stream: str, table: str, relation: sql.Composable, relation_name: str, *,
                 columns: dict[str, ColumnType], column_of: dict[str, str], keys: list[str], existed: bool,
                 feeder: CopyFeeder) -> None:
        self.stream = stream
        self.table = table
        self.relation = relation  # where rows are COPYed: the new staging table, or a temp table
        self.relation_name = relation_name
        self.existed = existed
        self.keys = keys
        self.columns: dict[str, ColumnType] = {}  # the table's columns
        self.column_of: dict[str, str] = {}  # property -> column (names.column_names)
        self.names: tuple[str, ...] = ()  # columns, in COPY order
        self.properties: tuple[str, ...] = ()  # their properties, in the same order
        self._json_positions: tuple[int, ...] = ()
        self._union_positions: tuple[int, ...] = ()
        self.record_decoder: msgspec.json.Decoder | None = None
        self.set_columns(columns, column_of)
        self.rows = 0
        self.batches = 0
        self.nul_removed = 0
        self.activated_at: tuple[int, int] | None = None  # (rows, batches) when ACTIVATE_VERSION came
        self.version: t.Any = None  # the version RECORD and BATCH messages gave the rows (None: none given)
        # A SCHEMA change not applied to the relation yet: its columns and key before the change.
        self._relation_was: tuple[dict[str, ColumnType], list[str]] | None = None
        # The hash of the exact COPY data of the stream, in order (snapshots.py); None once the
        # rows are not one plain pass (a SCHEMA change, the stream sent again): merged then.
        self.digest: snapshots.Digest | None = snapshots.new_digest()
        self.started = time.monotonic()
        self._last_progress = self.started
        self.buffer: list[list[t.Any]] = []
        self._feeder = feeder
        self.write_row: t.Callable[[t.Sequence[t.Any]], None] = self.buffer_row

    def set_columns(self, columns: dict[str, ColumnType], column_of: dict[str, str]) -> None:
        """Columns in COPY order: those of earlier SCHEMA messages of the run stay (null from now on)."""
        self.columns = {**self.columns, **columns}
        self.column_of = {**self.column_of, **column_of}
        self.names = tuple(self.columns)
        property_of = {column: prop for prop, column in self.column_of.items()}
        self.properties = tuple(property_of[name] for name in self.names)
        kinds = [column.kind for column in self.columns.values()]
        self._json_positions = tuple(i for i, kind in enumerate(kinds) if kind is Kind.JSON)
        self._union_positions = tuple(i for i, kind in enumerate(kinds) if kind is Kind.TEXT_UNION)
        self._converts = bool(self._json_positions or self._union_positions)
        self.record_decoder = record_message_decoder(self.properties)

    def follow(self, columns: dict[str, ColumnType], column_of: dict[str, str], keys: list[str]) -> None:
        """A later SCHEMA message's columns and key. The relation follows them when the next rows
        are copied, or at the end (`apply_schema`): rows dropped first (a new version) are not
        converted in vain."""
        if self._relation_was is None:
            self._relation_was = (dict(self.columns), list(self.keys))
        self.digest = None
        self.set_columns(columns, column_of)
        self.keys = keys

    def apply_schema(self, connection: psycopg.Connection) -> None:
        """The relation's columns and key as the last SCHEMA message gave them; no COPY may run."""
        if self._relation_was is not None:
            columns, keys = self._relation_was
            started = time.monotonic()
            tables.change_loading_table(connection, self.relation, columns, self.columns, keys, self.keys)
            self._relation_was = None
            if self.rows:
                logger.info("%s: the %s rows loaded so far follow the SCHEMA change in %.1f s", self.table,
                            f"{self.rows:,}", time.monotonic() - started)

    def restart(self, version: t.Any) -> None:
        """The stream is sent again as `version`: counted from its first row (the relation was emptied)."""
        self.version = version
        self.digest = None
        self.rows = self.batches = self.nul_removed = 0
        self.activated_at = None
        self.buffer.clear()

    @property
    def complete(self) -> bool:
        """ACTIVATE_VERSION arrived after the stream's last RECORD or BATCH."""
        return self.activated_at == (self.rows, self.batches)

    def activate(self) -> None:
        self.activated_at = (self.rows, self.batches)

    def write(self, record: dict[str, t.Any]) -> None:
        """A decoded record to its COPY (or the stream's buffer), in column order."""
        row = list(map(record.get, self.properties))
        if self._converts:
            self._convert(row)
        self.rows += 1
        self.write_row(row)
        if not self.rows % PROGRESS_EVERY_ROWS:
            self.progress()

    def write_decoded(self, values: msgspec.Struct) -> None:
        """The hot path: a record decoded by `record_decoder`, its values already in column order."""
        row = astuple(values)
        if self._converts:
            row = self._convert(list(row))
        self.rows += 1
        self.write_row(row)
        if not self.rows % PROGRESS_EVERY_ROWS:
            self.progress()

    def _convert(self, row: list[t.Any]) -> list[t.Any]:
        """jsonb values as JSON text; non-strings of a text union as JSON text (true, not t)."""
        for i in self._json_positions:
            if (value := row[i]) is not None:
                row[i] = json_text(value)
        for i in self._union_positions:
            if (value := row[i]) is not None and not isinstance(value, str):
                row[i] = json_text(value)
        return row

    def buffer_row(self, row: list[t.Any]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= BUFFER_ROWS or self._feeder.idle:
            self._feeder.make_live(self)

    def progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_SECONDS:
            self._last_progress = now
            logger.info("%s: %s rows so far, %s rows/s", self.table, f"{self.rows:,}",
                        f"{self.rows / (now - self.started):,.0f}")

    def copy_statement(self, columns: t.Sequence[str], *, csv: bool) -> sql.Composed:
        # FREEZE: the relation (new staging table or temp table) was created in this transaction,
        # so its rows need no visibility checks or hint-bit writes later.
        return sql.SQL("copy {} ({}) from stdin ({}, freeze)").format(
            self.relation, sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL("format csv" if csv else "format text"))


class ThreadedWriter(LibpqWriter):
    """Sends COPY data to the server from a worker thread, so that formatting rows (Python, or
    Arrow's C++ CSV writer) overlaps with the server parsing them: measured on the parquet path,
    the two took turns otherwise. At most QUEUED_CHUNKS chunks wait (a few MB): flat memory.
    psycopg's QueuedLibpqWriter does the same with a queue of 1024 chunks of any size, which
    holds hundreds of MB when the chunks are Arrow CSV batches and the server is the slower side.
    """

    QUEUED_CHUNKS = 8
    ABANDON_SECONDS = 5.0  # for the chunk being sent when the run fails, before the connection is closed

    def __init__(self, cursor: psycopg.Cursor, digest: snapshots.Digest | None = None) -> None:
        super().__init__(cursor)
        # Updated in the worker, in the order the data is sent; hashlib releases the GIL for
        # chunks this size, so hashing overlaps with formatting the next rows.
        self._digest = digest
        self._chunks: queue.Queue[t.Any] = queue.Queue(maxsize=self.QUEUED_CHUNKS)
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None
        self._abandoned = False

    def _send(self) -> None:
        try:
            while data := self._chunks.get():
                super().write(data)
                if self._digest is not None:  # after the send: the server parses while this hashes
                    self._digest.update(data)
        except BaseException as exc:  # handed to the main thread by write() or finish()
            self._error = exc
            while self._chunks.get():  # keep draining: write() must not block on a full queue
                pass

    def write(self, data: t.Any) -> None:
        if self._error is not None:
            raise self._error
        if self._worker is None:
            self._worker = threading.Thread(target=self._send, name="copy-writer", daemon=True)
            self._worker.start()
        self._chunks.put(data)

    def finish(self, exc: BaseException | None = None) -> None:
        if self._abandoned:  # the connection is closed next: nothing to end, nothing to report
            return
        if self._worker is not None:
            self._chunks.put(b"")
            self._worker.join()
            self._worker = None
        if self._error is not None:
            raise self._error
        super().finish(exc)

    def abandon(self) -> None:
        """The run failed: the chunks waiting are dropped and the worker stops (closing the
        connection, next, rolls the COPY back); `finish` then does nothing."""
        self._abandoned = True
        with contextlib.suppress(queue.Empty):
            while True:
                self._chunks.get_nowait()
        if self._worker is not None:
            with contextlib.suppress(queue.Full):
                self._chunks.put_nowait(b"")
            self._worker.join(self.ABANDON_SECONDS)


class CopyAbandonedError(Exception):
    """Ends a COPY whose rows are rolled back: the run failed."""


class CopyFeeder:
    """The connection's one COPY at a time, kept open while records keep coming for its stream."""

    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection
        self._live: StreamLoad | None = None
        self._stack: contextlib.ExitStack | None = None
        self._writer: ThreadedWriter | None = None
        # The COPY running, or the one that failed: what its rows are, for error messages.
        self.copying: CopyTarget | None = None

    def start(self, load: StreamLoad, columns: t.Sequence[str] | None = None, *, csv: bool = False,
              first_row: int = 1, source: str | None = None) -> psycopg.Copy:
        """End the live COPY and start one into `load`'s relation; its line 1 is row `first_row`
        of the stream, or of the batch file `source`."""
        self.end()
        load.apply_schema(self._connection)
        columns = tuple(columns or load.names)
        self.copying = CopyTarget(load.table, load.relation_name, columns, first_row=first_row, source=source)
        if load.digest is not None:
            load.digest.update(snapshots.copy_header(columns, csv=csv))
        cursor = self._connection.cursor()
        self._writer = ThreadedWriter(cursor, load.digest)
        self._stack = contextlib.ExitStack()  # set first: `abandon` must find a COPY even half started
        return self._stack.enter_context(cursor.copy(load.copy_statement(columns, csv=csv), writer=self._writer))

    @property
    def idle(self) -> bool:
        return self._stack is None

    def make_live(self, load: StreamLoad, source: str | None = None) -> None:
        """Give `load` the COPY: its buffered rows first, then its records as they come.
        `source` names a batch file whose records start a new COPY."""
        if self._live is load and source is None:
            return
        copy = self.start(load, first_row=load.rows - len(load.buffer) + 1, source=source)
        self._live = load
        for row in load.buffer:
            copy.write_row(row)
        load.buffer.clear()
        load.write_row = copy.write_row

    def end(self) -> None:
        """Finish the running COPY (the server reports a bad value here at the latest)."""
        if self._live is not None:
            self._live.write_row = self._live.buffer_row
            self._live = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()
        self.copying = None  # it ended well

    def abandon(self) -> None:
        """The run failed: stop the running COPY without sending more; the connection, closed
        next, rolls it back. Nothing is left for the garbage collector to end (and log) later."""
        if self._live is not None:
            self._live.write_row = self._live.buffer_row
            self._live = None
        if self._stack is not None and self._writer is not None:
            stack, self._stack = self._stack, None
            self._writer.abandon()
            stack.__exit__(CopyAbandonedError, CopyAbandonedError(), None)

    def drop(self, load: StreamLoad) -> None:
        """`load`'s rows not sent yet are dropped; no COPY is running after."""
        load.buffer.clear()
        self.end()

    def flush(self, load: StreamLoad) -> None:
        """Everything `load` holds is in its relation, and no COPY is running."""
        if load.buffer:
            self.make_live(load)
        self.end()
