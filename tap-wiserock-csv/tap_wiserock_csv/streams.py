"""One stream per CSV file: typed blocks out as RECORD messages, or as BATCH files.

A sampled plan's types follow the values (`widen.py`): a column that a later value does not
fit is widened by a new SCHEMA message before that value's block (in BATCH mode the open file
is closed first, so that the loader reads every file with the types it was written with). A
change the rows already sent cannot follow exactly starts the stream over: the file is typed
by a first pass and sent again as the stream's next version, which its RECORD and BATCH
messages and its only ACTIVATE_VERSION carry (`writer.py`).
"""

from __future__ import annotations

import dataclasses
import sys
import time
import typing as t

import pyarrow as pa
from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import SchemaMessage

from tap_wiserock_csv.batches import BatchFiles
from tap_wiserock_csv.cache import fingerprint
from tap_wiserock_csv.checks import BadRowPolicy, RowCheck, checked_blocks
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.keys import KeyHashes
from tap_wiserock_csv.kinds import json_schema
from tap_wiserock_csv.layout import Layout
from tap_wiserock_csv.plan import FilePlan, log_sub_microseconds, plan_file, refuse_duplicate_keys
from tap_wiserock_csv.reader import CsvReader
from tap_wiserock_csv.typed import Converter, TypedBlock, arrow_schema
from tap_wiserock_csv.widen import StartOver, StreamTyping

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context
    from singer_sdk.mapper import StreamMap

    from tap_wiserock_csv.plan import FileOptions
    from tap_wiserock_csv.references import Reference
    from tap_wiserock_csv.tap import TapWiseRockCsv
    from tap_wiserock_csv.widen import Change

METADATA_COLUMNS = {
    "_sdc_source_file": {"type": ["string", "null"]},
    "_sdc_source_lineno": {"type": ["integer", "null"]},
}


def stream_description(label: str, stamp: str) -> str:
    """The schema's description; it carries the plan stamp that ties a catalog to the file."""
    return f"{label}, typed from its content (plan {stamp})"


@dataclasses.dataclass
class Retyped:
    """Between two blocks: the columns' types changed; the blocks that follow have the new ones."""

    start_over: bool  # the rows sent so far are sent again, as the stream's next version


class CsvFileStream(Stream):
    """A CSV file's rows, in file order, typed by the file's plan (or by the catalog's types)."""

    # The typed blocks match the schema already; conforming each record again is pure overhead.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    references: tuple[Reference, ...] = ()  # its files entry's, set by the tap's discovery

    def __init__(self, tap: TapWiseRockCsv, options: FileOptions, plan: FilePlan, stamp: str) -> None:
        self.tap = tap
        self.options = options
        self.plan = plan
        self.kinds = list(plan.kinds)  # the columns' kinds as the last SCHEMA message gave them
        self.description = stream_description(options.label, stamp)
        self.add_metadata = bool(tap.config["add_metadata_columns"])
        self.batch_file_max_bytes = int(tap.config["batch_file_max_bytes"])
        self.plans = tap.planner.cache
        super().__init__(tap=tap, schema=self._current_schema(), name=options.stream)
        self.primary_keys = plan.keys
        self.message_writer = tap.message_writer

    def _current_schema(self) -> dict[str, t.Any]:
        properties = {column: json_schema(kind, nullable=column not in self.plan.keys)
                      for column, kind in zip(self.plan.columns, self.kinds, strict=True)}
        if self.add_metadata:
            properties.update(METADATA_COLUMNS)
        return {"type": "object", "properties": properties, "description": self.description}

    @property
    @override
    def stream_maps(self) -> list[StreamMap]:
        """The mapper's current maps (the SDK's cached list would keep a schema the stream changed)."""
        return self.tap.mapper.stream_maps[self.name]

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        for item in self._blocks():
            if isinstance(item, Retyped):
                self._send_schema()  # the SDK has written every record yielded before
            else:
                yield from item.records()
        # Resumed after the last record was written: only now may the loader delete older rows.
        self.message_writer.release_activate_version()

    @override
    def get_batches(self, batch_config: BatchConfig,
                    context: Context | None = None) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Batch files straight from the typed blocks, each handed over as soon as it is full."""
        files = BatchFiles(batch_config, self.name, self._schema_for_files(), self.batch_file_max_bytes)
        try:
            for item in self._blocks():
                if isinstance(item, Retyped):
                    if item.start_over:
                        files.discard()  # its rows are sent again
                    else:  # the loader reads each file with the types it was written with
                        for url in files.finish():
                            yield batch_config.encoding, [url]
                    self._send_schema()
                    files.schema = self._schema_for_files()
                    continue
                for url in files.write(item):
                    yield batch_config.encoding, [url]
            for url in files.finish():
                yield batch_config.encoding, [url]
        except BaseException:
            # A file once yielded is the SDK's to announce and the loader's to remove (the SDK
            # writes its BATCH message straight away); the one being written is ours.
            files.discard()
            raise
        # The SDK writes each BATCH message before resuming this generator: we are past the last one.
        self.message_writer.release_activate_version()

    def _send_schema(self) -> None:
        """A SCHEMA message with the columns' kinds as they are now; the rows that follow have them."""
        self.schema.clear()
        self.schema.update(self._current_schema())  # in place: the SDK holds this very dict
        selected = {name: prop for name, prop in self.schema["properties"].items()
                    if self.mask.get(("properties", name), True)}
        self.tap.mapper.register_raw_stream_schema(self.name, {**self.schema, "properties": selected},
                                                   self.primary_keys)
        for stream_map in self.stream_maps:
            self.message_writer.write_message(SchemaMessage(stream_map.stream_alias, stream_map.transformed_schema,
                                                            stream_map.transformed_key_properties, None))

    def _selected_positions(self) -> list[int]:
        mask = self.mask
        return [index for index, column in enumerate(self.plan.columns)
                if column in self.primary_keys or mask.get(("properties", column), True)]

    def _schema_for_files(self) -> t.Any:
        positions = self._selected_positions()
        return arrow_schema([self.plan.columns[i] for i in positions], [self.kinds[i] for i in positions],
                            list(self.primary_keys), metadata=self.add_metadata)

    def _converter(self, cuts: dict[str, int]) -> Converter:
        return Converter(self.options.label, self.plan.columns, list(self.kinds), self._selected_positions(),
                         self._schema_for_files(), self.add_metadata, cuts)

    def _blocks(self) -> t.Iterator[TypedBlock | Retyped]:
        """The file's typed blocks; where a change cannot be exact, the stream starts over, once."""
        try:
            yield from self._typed_blocks(self.plan)
        except StartOver as over:
            plan = self._start_over(over)
            yield Retyped(start_over=True)
            yield from self._typed_blocks(plan)

    def _start_over(self, over: StartOver) -> FilePlan:
        """The file typed by a first pass; the messages that follow are the stream's next version."""
        options = self.options
        if not self.message_writer.start_over([stream_map.stream_alias for stream_map in self.stream_maps]):
            raise CsvInputError(f"{options.label}: {over}: the rows already sent cannot take that type exactly, and "
                                "without ACTIVATE_VERSION messages the stream cannot be sent again; set "
                                "emit_activate_version_messages: true (the tap then types such files first)")
        self.logger.warning("%s: %s: the rows already sent cannot take that type exactly; typing the whole file, "
                            "then sending the stream again from its first row, as its next version (the loader "
                            "drops the rows it received before).", options.label, over)
        started = time.perf_counter()
        pa.default_memory_pool().release_unused()  # what the first sending's blocks held: the pass needs its own
        file_fingerprint = fingerprint(options)
        plan = plan_file(options, self.logger)
        if plan is None or plan.columns != self.plan.columns:
            raise CsvInputError(f"{options.label}: the file changed while the tap read it; run again")
        self.plans.put(options, file_fingerprint, plan)
        self.logger.info("Typed %s from its content in %.1f s.", options.label, time.perf_counter() - started)
        self.kinds = list(plan.kinds)
        return plan

    def _retype(self, changes: list[Change]) -> bool:
        """Changes the rows sent so far can follow exactly become the stream's kinds; any other starts
        it over. True when a column that is sent changed (deselected ones are only noted)."""
        sent = {self.plan.columns[position] for position in self._selected_positions()}
        if inexact := [change for change in changes if not change.exact and change.column in sent]:
            raise StartOver(inexact)
        for change in changes:
            self.kinds[self.plan.columns.index(change.column)] = change.new
        if changes := [change for change in changes if change.column in sent]:
            self.logger.info("%s: %s; the rows sent so far follow exactly (a new SCHEMA message).", self.options.label,
                             "; ".join(map(str, changes)))
        return bool(changes)

    def _typed_blocks(self, plan: FilePlan) -> t.Iterator[TypedBlock | Retyped]:
        """The file read again and checked by the same rules as its first pass, converted block by block.
        A sampled plan's kinds are checked against every value (and widened), and its keys."""
        options = self.options
        file_fingerprint = fingerprint(options)
        reader = CsvReader(options.path, options.dialect, label=options.label)
        if reader.header is None:
            raise CsvInputError(f"{options.label}: the file is empty now; re-run discovery")
        layout = Layout.of(options, reader.header, reader.header_line)
        if layout.columns != plan.columns:
            raise CsvInputError(f"{options.label}: the columns changed since discovery ({', '.join(layout.columns)}); "
                                "re-run discovery")
        if layout.renamed and plan is self.plan:  # logged by the sync, which reads every file (discovery may not)
            self.logger.info("%s line %d: headers repeat a column name, the later ones renamed: %s (duplicate_headers "
                             "fail refuses such files).", options.label, reader.header_line, "; ".join(layout.renamed))
        keys = list(self.primary_keys)
        check = RowCheck(options.label, plan.columns, keys, layout.forced, options.null_values)
        policy = BadRowPolicy(options.label, options.skip_bad_rows, options.max_bad_rows, logger=self.logger)
        cuts = {column: 0 for column, kind in layout.forced.items() if kind == "date-time"}
        converter = self._converter(cuts)
        typing = StreamTyping(plan.columns, self.kinds, unseen=plan.unseen, forced=layout.forced) \
            if plan.sampled else None
        empty = 0
        with KeyHashes([] if plan.keys_checked else [plan.columns.index(key) for key in keys]) as key_hashes:
            for checked in checked_blocks(reader.blocks(), check, policy):
                empty += checked.empty_rows
                if typing is not None and (changes := typing.observe(checked)) and self._retype(changes):
                    converter = self._converter(cuts)
                    yield Retyped(start_over=False)
                converted = typing.converted if typing is not None else None
                key_hashes.add(checked, converted)
                if checked.num_rows:
                    yield converter.convert(checked, converted)
            whole = FilePlan(layout.headers, plan.columns, list(self.kinds), keys, layout.forced)
            if key_hashes.positions:  # before the stream's ACTIVATE_VERSION: a repeated key fails the run
                refuse_duplicate_keys(options, check, whole, key_hashes)
        if reader.exact_from is not None:
            self.logger.info("Read %s with Python's csv module from line %d on (something there needs a closer look "
                             "than the fast reader gives: quoting, a field count or an encoding).",
                             options.label, reader.exact_from)
        if empty:
            self.logger.info("Passed over %d rows of %s holding only delimiters.", empty, options.label)
        if reader.source.nuls_removed:
            self.logger.info("Removed %d NUL characters from %s.", reader.source.nuls_removed, options.label)
        for column, count in converter.sub_microseconds_cut.items():
            if count:
                self.logger.info("Cut %d values of column %r of %s to microseconds (digits beyond them were not "
                                 "zeros).", count, column, options.label)
        if typing is not None:
            for column, value in typing.sub_microseconds.items():
                log_sub_microseconds(self.logger, options.label, column, value)
            # Every value was seen: the next discovery of the unchanged file takes these kinds as they are.
            self.plans.put(options, file_fingerprint, whole)
