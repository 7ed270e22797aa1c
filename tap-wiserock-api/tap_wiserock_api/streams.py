"""A table of the `tables` setting as a Singer stream: its columns, types and key from the API.

Discovery (`discover`) takes the table's shape from the API's description when the key may
read it, else from its first page of rows (infer.py); `column_types` forces types, and a
column named `activeflag` is a boolean. The read then checks every page's columns against
that shape, so that a column added or dropped meanwhile fails the run before the stream
completes (the loader commits nothing then). With types from rows, a column's type may widen
while reading (a SCHEMA message before the rows that need it) and date-times get their type in
the stream's last SCHEMA message (see infer.py).
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import typing as t

from singer_sdk.exceptions import FatalAPIError
from singer_sdk.singerlib import SchemaMessage

from tap_wiserock_api.batches import BatchFiles
from tap_wiserock_api.client import PostgrestStream, TablePages
from tap_wiserock_api.errors import SettingError, SourceShapeError
from tap_wiserock_api.infer import TableTyping
from tap_wiserock_api.keyset import Keyset
from tap_wiserock_api.kinds import BOOLEAN, FLAG_COLUMN, ORDERABLE_KINDS, STRING, schema_of
from tap_wiserock_api.normalize import convert_page, converter_for, records_of, to_flag
from tap_wiserock_api.prefetch import KeyRange, Page

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context
    from singer_sdk.mapper import StreamMap
    from singer_sdk.singerlib import Catalog

    from tap_wiserock_api.normalize import Converter
    from tap_wiserock_api.openapi import TableDescription
    from tap_wiserock_api.references import Reference
    from tap_wiserock_api.tables import TableSetting
    from tap_wiserock_api.tap import TapWiseRockApi

KEY_HINT = 'set its "key" in the tables setting, e.g. {"name": "%s", "key": ["a", "b"]}'


class TableStream(PostgrestStream):
    """A full-table read of one table or view, its shape discovered from the API."""

    def __init__(self, tap: TapWiseRockApi, setting: TableSetting) -> None:
        super().__init__(tap, setting)
        self.mode = "rows"  # or "description": where the columns and types came from
        self.columns_known = True  # False: no description and no rows (and no earlier run to remember)
        self.parents: tuple[str, ...] = ()
        self.references: tuple[Reference, ...] = ()  # the description's foreign keys and the entry's references
        self.kinds: dict[str, str] = {}  # every column's type (final, once every value was seen)
        self.sent_kinds: dict[str, str] = {}  # the types of the last SCHEMA message
        self.typing: TableTyping | None = None  # types from rows
        self._first: tuple[Page, int | None] | None = None  # the first page, read by discovery
        self._started: concurrent.futures.Future[TablePages] | None = None  # read ahead while the stream before it ran
        self._key_types: tuple[str | None, ...] = ()  # the key's PostgreSQL types, from the description
        self._required: frozenset[str] = frozenset()
        self._converters: dict[str, Converter] = {}

    def discover(self, descriptions: dict[str, TableDescription] | None, loaded: t.Collection[str]) -> None:
        """Fill in columns, types, key, references and parents, from the description or from the
        first page; `loaded`: the tables of the setting."""
        if descriptions is not None:
            self._settle_references(self._from_description(descriptions), loaded)
        else:
            self._from_rows()
            self._settle_references((), loaded)
        self.parents = tuple(dict.fromkeys([*self.setting.parents, *(reference.parent for reference in self.references
                                                                     if reference.parent != self.name)]))

    def _settle_references(self, described: t.Sequence[Reference], loaded: t.Collection[str]) -> None:
        """The description's foreign keys to loaded tables, and the entry's references (which win for their column)."""
        declared = {reference.column: reference for reference in self.setting.references}
        if self.kinds and (missing := [str(reference) for reference in declared.values() if reference.column not in self.kinds]):
            raise SettingError(f"tables entry '{self.name}': references {', '.join(missing)}, but the table has no such "
                               f"column (its columns: {', '.join(self.kinds)})")
        found = [reference for reference in described if reference.column not in declared]
        if elsewhere := [str(reference) for reference in found if reference.parent not in loaded]:
            self.logger.info("Table '%s': %s: %s not in tables, so not checked (a references entry can point such a "
                             "column at a table that is loaded).", self.name, ", ".join(elsewhere),
                             "that table is" if len(elsewhere) == 1 else "those tables are")
        self.references = (*(reference for reference in found if reference.parent in loaded), *declared.values())

    def _from_description(self, descriptions: dict[str, TableDescription]) -> tuple[Reference, ...]:
        table = descriptions.get(self.name)
        if table is None:
            described = f"the API's description of schema '{self.profile}'" if self.profile else "the API's description"
            raise SourceShapeError(f"table '{self.name}' is not in {described} (it has "
                                   f"{', '.join(sorted(descriptions)) or 'no tables'}): check the tables setting")
        self.mode = "description"
        key = self.setting.key or table.primary_key or (("id",) if "id" in table.columns else ())
        self._key_types = tuple(table.formats.get(name) for name in key)  # how ranges.py cuts the key
        self._settle(table.columns, key, required=table.required)
        return table.references

    def _from_rows(self) -> None:
        key = self.setting.key or ("id",)
        self.keyset = Keyset(self.name, key, (STRING,) * len(key))  # kinds unknown until the rows show them
        try:
            page, total = self.request_page(None, KeyRange(None, None),
                                            count="estimated" if self.config["parallel_requests"] > 1 else None)
        except FatalAPIError as exc:
            if "42703" not in str(exc):  # PostgreSQL's undefined_column: the key to order by is missing
                raise
            raise SourceShapeError(f"table '{self.name}' cannot be read in key order ({', '.join(key)}): {exc}; "
                                   + KEY_HINT % self.name) from None
        if not page.rows:  # no columns to see: the last successful run's may be remembered (see announce)
            self.columns_known = False
            self._settle({}, key)
            return
        forced = {name for name in page.rows[0] if name in self.setting.column_types or name == FLAG_COLUMN}
        self.typing = TableTyping(self.name, [name for name in page.rows[0] if name not in forced], key)
        self.typing.observe(page.rows)
        self._first = (page, total)
        self._settle(dict.fromkeys(page.rows[0], STRING), key, required=key)

    def _settle(self, columns: dict[str, str], key: t.Sequence[str], required: t.Iterable[str] = ()) -> None:
        """Apply column_types and the flag rule, check the key, and build the schema."""
        if unknown := sorted(set(self.setting.column_types) - set(columns)) if columns else []:
            raise SourceShapeError(f"table '{self.name}': column_types names columns it does not have: {', '.join(unknown)}")
        kinds = {name: self._kind(name, kind) for name, kind in columns.items()}
        if self.typing is not None:
            kinds |= self.typing.kinds()
        if columns and not key:
            raise SourceShapeError(f"table '{self.name}' has no usable key (no primary key in the API's description and "
                                   f"no id column): " + KEY_HINT % self.name)
        if columns and (missing := [name for name in key if name not in columns]):
            raise SourceShapeError(f"table '{self.name}' has no column {', '.join(missing)} for its key: " + KEY_HINT % self.name)
        if bad := [name for name in key if columns and kinds[name] not in ORDERABLE_KINDS]:
            raise SourceShapeError(f"table '{self.name}': key column {', '.join(bad)} is {kinds[bad[0]]}, which keyset "
                                   "paging cannot order: " + KEY_HINT % self.name)
        self.keyset = Keyset(self.name, tuple(key), tuple(kinds.get(name, STRING) for name in key), self._key_types)
        self.primary_keys = list(key) if columns else []  # a catalog may not name a key its schema lacks
        self.kinds = kinds
        self._required = frozenset(required) | set(key)
        self._set_schema(kinds)

    def _kind(self, name: str, kind: str) -> str:
        if name in self.setting.column_types:
            return self.setting.column_types[name]
        return BOOLEAN if name == FLAG_COLUMN else kind

    def _set_schema(self, kinds: dict[str, str]) -> None:
        """The stream's schema (edited in place: the SDK holds this very dict) and the converters."""
        self.schema.clear()
        self.schema.update(schema_of(kinds, self._required))
        self.sent_kinds = dict(kinds)
        forced = set(self.setting.column_types) | {FLAG_COLUMN}
        self._converters = {
            name: to_flag if name == FLAG_COLUMN and name not in self.setting.column_types
            else converter_for(kind, declared=self.mode == "description" and name not in forced)
            for name, kind in kinds.items()}

    # -- the catalog and the SCHEMA messages ---------------------------------------------
    @override
    def apply_catalog(self, catalog: Catalog) -> None:
        """Use the catalog for selection only: its columns must be the source's (never trusted
        blindly), and keys and types come from the source and the tables setting."""
        super().apply_catalog(catalog)
        self.primary_keys = list(self._keyset().key) if self.kinds else []
        entry = catalog.get_stream(self.name)
        listed = set(entry.schema.properties or {}) if entry is not None else set()
        if not (self.columns_known and listed):
            return
        source = set(self.kinds)
        if listed != source:
            only_source, only_catalog = sorted(source - listed), sorted(listed - source)
            raise SourceShapeError(
                f"table '{self.name}': the catalog does not match the source: columns only in the source: "
                f"{', '.join(only_source) or 'none'}; only in the catalog: {', '.join(only_catalog) or 'none'} "
                "(discover again: tap-wiserock-api --discover, as Meltano does before each run)")

    @property
    @override
    def stream_maps(self) -> list[StreamMap]:
        """The mapper's current maps (the SDK's cached list would keep a schema the stream changed)."""
        return self.tap.mapper.stream_maps[self.name]

    def remember_columns(self) -> bool:
        """For an empty table whose columns the rows cannot show: those of the last successful
        run (its state), so that the stream still completes and its staging table is emptied."""
        remembered = self.stream_state.get("columns")
        if not self.columns_known and remembered:
            self.columns_known = True
            self._settle(dict(remembered), tuple(self.stream_state.get("key") or self._keyset().key))
        return self.columns_known

    def announce(self) -> None:
        """Before the sync: the stream maps carry the source's columns (the selected ones) as sent."""
        kinds = self.typing.sent() if self.typing is not None else self.kinds
        self._set_schema({name: kinds.get(name, kind) for name, kind in self.kinds.items()})
        self._register()

    def _register(self) -> None:
        selected = {name: prop for name, prop in self.schema["properties"].items() if self.mask.get(("properties", name), True)}
        self.tap.mapper.register_raw_stream_schema(self.name, {"type": "object", "properties": selected}, self.primary_keys)

    def _retype(self, changes: dict[str, str]) -> None:
        """Send a SCHEMA message with the columns' new types; rows that follow use them."""
        self.logger.info("Table '%s': %s.", self.name,
                         ", ".join(f"column {name} is now {kind}" for name, kind in changes.items()))
        self._set_schema(self.sent_kinds | changes)
        self._register()
        for stream_map in self.stream_maps:
            self.message_writer.write_message(SchemaMessage(stream_map.stream_alias, stream_map.transformed_schema,
                                                            stream_map.transformed_key_properties, None))

    @override
    def check_columns(self, rows: list[dict[str, t.Any]]) -> None:
        if not rows or not self.kinds or rows[0].keys() == self.kinds.keys():
            return
        new, gone = sorted(set(rows[0]) - set(self.kinds)), sorted(set(self.kinds) - set(rows[0]))
        raise SourceShapeError(f"table '{self.name}': its columns changed during the run: new {', '.join(new) or 'none'}, "
                               f"gone {', '.join(gone) or 'none'}; nothing of this run is loaded, rerun to load the "
                               "table as it is now")

    # -- the sync --------------------------------------------------------------------
    def _pages(self, context: Context | None) -> t.Iterator[Page]:
        """This table's pages (already being read when the stream before it started them), and
        the next selected table's read started: its first pages arrive while these rows are
        emitted, within its own read-ahead budget and the tap's in-flight limit. Streams are
        still emitted one after another, parents first."""
        started, self._started = self._started, None
        if started is not None:
            pages = started.result()
        else:
            first, self._first = self._first, None
            pages = self.start_pages(context, first)
        if (following := self._next_selected()) is not None:
            following.read_ahead()
        return iter(pages)

    def _next_selected(self) -> TableStream | None:
        streams = self.tap.table_streams
        later = streams[streams.index(self) + 1:] if self in streams else []
        return next((stream for stream in later if stream.selected), None)

    def read_ahead(self) -> None:
        """Start reading this table in a background thread (no partitions: context None); a
        failure is raised when the stream syncs, in its turn."""
        if self._started is not None:
            return
        first, self._first = self._first, None
        started: concurrent.futures.Future[TablePages] = concurrent.futures.Future()
        self._started = started

        def start() -> None:
            try:
                started.set_result(self.start_pages(None, first))
            except BaseException as exc:  # raised in the stream's turn
                started.set_exception(exc)

        threading.Thread(target=start, name=f"{self.name}-start", daemon=True).start()

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        rows = 0
        for page in self._pages(context):
            if self.typing is not None and (changes := self.typing.observe(page.rows)):
                self._retype(changes)
            rows += len(page.rows)
            yield from records_of(convert_page(page.rows, self._converters, self.name, self.keyset.key))
        self._finish(rows)

    @override
    def get_batches(self, batch_config: BatchConfig,
                    context: Context | None = None) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Each page becomes part of a batch file in one step, column by column. A column whose
        type changes closes the file first: the loader reads that file with the old type."""
        selected = [name for name in self.kinds if self.mask.get(("properties", name), True)]
        files = BatchFiles(batch_config, max_bytes=self.config["batch_file_max_bytes"], tap=self.tap_name,
                           stream=self.name, kinds={name: self.sent_kinds[name] for name in selected})
        rows = 0
        with self.get_record_counter() as counter:
            try:
                for page in self._pages(context):
                    if self.typing is not None and (changes := self.typing.observe(page.rows)):
                        for url in files.finish():
                            yield batch_config.encoding, [url]
                        self._retype(changes)
                        files.kinds = {name: self.sent_kinds[name] for name in selected}
                    converters = {name: self._converters[name] for name in selected}
                    columns = convert_page(page.rows, converters, self.name, self.keyset.key)
                    counter.increment(len(page.rows))
                    rows += len(page.rows)
                    for url in files.add(columns, len(page.rows)):
                        yield batch_config.encoding, [url]
                for url in files.finish():
                    yield batch_config.encoding, [url]
            except BaseException:
                files.discard()
                raise
        # singer-sdk writes each BATCH message after this generator yields it: resumed here,
        # the last one is out, so what follows comes after every batch of the stream.
        self._finish(rows)

    def _finish(self, rows: int) -> None:
        """After the last row: the columns' final types, the RLS warning, what the next run
        remembers, and then ACTIVATE_VERSION (the loader's sign that the stream is complete)."""
        if self.typing is not None and (changes := {name: kind for name, kind in self.typing.kinds().items()
                                                    if self.sent_kinds[name] != kind}):
            self._retype(changes)
        before = self.stream_state.get("rows")
        if rows == 0 and before:
            self.logger.warning(
                "Table '%s' returned no rows, but %s at the last successful run. If Row Level Security is on for it, "
                "the login (or the key's role) has no policy that lets it read the rows; its staging table will be "
                "emptied. See the README: which key and login see every row.", self.name, f"{before:,}")
        self.stream_state.update({"rows": rows, "columns": dict(self.sent_kinds), "key": list(self.keyset.key)})
        self.message_writer.release_activate_version()
