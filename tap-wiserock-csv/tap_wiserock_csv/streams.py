"""One stream per CSV file: typed blocks out as RECORD messages, or as BATCH files."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_wiserock_csv.batches import BatchFiles
from tap_wiserock_csv.checks import BadRowPolicy, RowCheck, checked_blocks
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.kinds import json_schema
from tap_wiserock_csv.layout import Layout
from tap_wiserock_csv.reader import CsvReader
from tap_wiserock_csv.typed import Converter, TypedBlock, arrow_schema

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context

    from tap_wiserock_csv.plan import FileOptions, FilePlan
    from tap_wiserock_csv.references import Reference
    from tap_wiserock_csv.tap import TapWiseRockCsv

METADATA_COLUMNS = {
    "_sdc_source_file": {"type": ["string", "null"]},
    "_sdc_source_lineno": {"type": ["integer", "null"]},
}


def stream_description(label: str, stamp: str) -> str:
    """The schema's description; it carries the plan stamp that ties a catalog to the file."""
    return f"{label}, typed from its content (plan {stamp})"


class CsvFileStream(Stream):
    """A CSV file's rows, in file order, typed by the file's plan (or by the catalog's types)."""

    # The typed blocks match the schema already; conforming each record again is pure overhead.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    references: tuple[Reference, ...] = ()  # its files entry's, set by the tap's discovery

    def __init__(self, tap: TapWiseRockCsv, options: FileOptions, plan: FilePlan, stamp: str) -> None:
        self.options = options
        self.plan = plan
        self.add_metadata = bool(tap.config["add_metadata_columns"])
        self.batch_file_max_bytes = int(tap.config["batch_file_max_bytes"])
        properties = {column: json_schema(kind, nullable=column not in plan.keys)
                      for column, kind in zip(plan.columns, plan.kinds, strict=True)}
        if self.add_metadata:
            properties.update(METADATA_COLUMNS)
        schema = {"type": "object", "properties": properties, "description": stream_description(options.label, stamp)}
        super().__init__(tap=tap, schema=schema, name=options.stream)
        self.primary_keys = plan.keys
        self.message_writer = tap.message_writer

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        for block in self._typed_blocks():
            yield from block.records()
        # Resumed after the last record was written: only now may the loader delete older rows.
        self.message_writer.release_activate_version()

    @override
    def get_batches(self, batch_config: BatchConfig,
                    context: Context | None = None) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Batch files straight from the typed blocks, each handed over as soon as it is full."""
        files = BatchFiles(batch_config, self.name, self._schema_for_files(), self.batch_file_max_bytes)
        try:
            for block in self._typed_blocks():
                for url in files.write(block):
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

    def _selected_positions(self) -> list[int]:
        mask = self.mask
        return [index for index, column in enumerate(self.plan.columns)
                if column in self.primary_keys or mask.get(("properties", column), True)]

    def _schema_for_files(self) -> t.Any:
        positions = self._selected_positions()
        return arrow_schema([self.plan.columns[i] for i in positions], [self.plan.kinds[i] for i in positions],
                            list(self.primary_keys), metadata=self.add_metadata)

    def _typed_blocks(self) -> t.Iterator[TypedBlock]:
        """The file read again and checked by the same rules as its first pass, converted block by block."""
        options, plan = self.options, self.plan
        reader = CsvReader(options.path, options.dialect, label=options.label)
        if reader.header is None:
            raise CsvInputError(f"{options.label}: the file is empty now; re-run discovery")
        layout = Layout.of(options, reader.header, reader.header_line)
        if layout.columns != plan.columns:
            raise CsvInputError(f"{options.label}: the columns changed since discovery ({', '.join(layout.columns)}); "
                                "re-run discovery")
        if layout.renamed:  # logged by the sync, which reads every file once per run (discovery may not)
            self.logger.info("%s line %d: headers repeat a column name, the later ones renamed: %s (duplicate_headers "
                             "fail refuses such files).", options.label, reader.header_line, "; ".join(layout.renamed))
        check = RowCheck(options.label, plan.columns, list(self.primary_keys), layout.forced, options.null_values)
        policy = BadRowPolicy(options.label, options.skip_bad_rows, options.max_bad_rows, logger=self.logger)
        converter = Converter(options.label, plan.columns, plan.kinds, self._selected_positions(),
                              self._schema_for_files(), self.add_metadata,
                              {column: 0 for column, kind in layout.forced.items() if kind == "date-time"})
        empty = 0
        for checked in checked_blocks(reader.blocks(), check, policy):
            empty += checked.empty_rows
            if checked.num_rows:
                yield converter.convert(checked)
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
