"""One stream per CSV file: a first pass plans its schema, a second emits its records."""

from __future__ import annotations

import dataclasses
import functools
import sys
import typing as t

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.inference import KINDS, ColumnProfile, converter, json_schema
from tap_wiserock_csv.naming import column_names
from tap_wiserock_csv.reader import BadRow, Dialect, Row, read_rows

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    import pathlib

    from singer_sdk.helpers.types import Context

    from tap_wiserock_csv.tap import TapWiseRockCsv

METADATA_COLUMNS = {
    "_sdc_source_file": {"type": ["string", "null"]},
    "_sdc_source_lineno": {"type": ["integer", "null"]},
}


@dataclasses.dataclass
class FileOverride:
    """A `files` entry: stream name, keys and forced column types for one file."""

    path: str
    stream: str | None = None
    keys: list[str] | None = None
    column_types: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, entry: dict[str, t.Any]) -> FileOverride:
        override = cls(path=entry["path"], stream=entry.get("stream"), keys=entry.get("keys"),
                       column_types=dict(entry.get("column_types") or {}))
        for column, kind in override.column_types.items():
            if kind not in KINDS:
                raise CsvInputError(f"files entry {override.path!r}: column {column!r} has type {kind!r}; "
                                    f"expected one of {', '.join(KINDS)}")
        return override


@dataclasses.dataclass
class FilePlan:
    """What the first pass learnt of a file: its columns, their kinds and its keys."""

    path: pathlib.Path
    label: str  # how errors name the file
    stream: str
    columns: list[str]
    kinds: list[str]
    keys: list[str]
    forced: frozenset[str]

    def problem(self, row: Row) -> BadRow | None:
        """Why the row is bad, or None: the first pass checks only what can fail."""
        if self.forced:  # a forced type is only checked by converting the value
            result = self.check(row)
            return result if isinstance(result, BadRow) else None
        return self._shape_problem(row)

    def check(self, row: Row) -> dict[str, t.Any] | BadRow:
        """The row's typed record, or why it is bad."""
        if bad := self._shape_problem(row):
            return bad
        record: dict[str, t.Any] = {}
        for column, kind, value in zip(self.columns, self.kinds, row.values, strict=False):
            try:
                record[column] = None if value is None else converter(kind)(value)
            except ValueError as exc:
                # Inferred kinds fit every value by construction; only a forced kind can miss.
                return BadRow(row.lineno, f"column {column!r}: {exc} (type forced to {kind})")
        return record

    def _shape_problem(self, row: Row) -> BadRow | None:
        """A wrong number of fields, or a null key."""
        if len(row.values) != len(self.columns):
            return BadRow(row.lineno, f"expected {len(self.columns)} fields, found {len(row.values)}")
        for index in self.key_positions:
            if row.values[index] is None:
                return BadRow(row.lineno, f"key column {self.columns[index]!r} is null")
        return None

    @functools.cached_property
    def key_positions(self) -> list[int]:
        return [self.columns.index(key) for key in self.keys]


def plan_file(path: pathlib.Path, label: str, stream: str, dialect: Dialect,
              override: FileOverride | None, *, skip_bad_rows: bool) -> FilePlan | None:
    """First pass: header, then every value, so that no later row can contradict a type."""
    rows = read_rows(path, dialect)
    header = next(rows, None)
    if header is None:
        return None
    if isinstance(header, BadRow):
        raise CsvInputError(f"{label} line {header.lineno}: header: {header.reason}")
    columns = column_names([value or "" for value in header.values], label)
    override = override or FileOverride(path=label)
    unknown = sorted(set(override.column_types) - set(columns))
    if unknown:
        raise CsvInputError(f"{label}: column_types name columns the file does not have: {', '.join(unknown)}")
    keys = override.keys or (["id"] if "id" in columns else [])
    missing_keys = sorted(set(keys) - set(columns))
    if missing_keys:
        raise CsvInputError(f"{label}: key columns not in the file: {', '.join(missing_keys)}")
    plan = FilePlan(path, label, stream, columns, [override.column_types.get(c, "string") for c in columns],
                    keys, frozenset(override.column_types))
    profiles = [ColumnProfile() for _ in columns]
    for row in rows:
        problem = row if isinstance(row, BadRow) else plan.problem(row)
        if problem is not None:
            if not skip_bad_rows:
                raise CsvInputError(f"{label} line {problem.lineno}: {problem.reason}")
            continue
        for profile, value in zip(profiles, row.values, strict=False):  # type: ignore[union-attr]
            if value is not None and profile.undecided:
                profile.add(value)
    plan.kinds = [override.column_types.get(column) or profile.kind(column)
                  for column, profile in zip(columns, profiles, strict=False)]
    return plan


class CsvFileStream(Stream):
    """A CSV file's rows as typed records, in file order."""

    # FilePlan.check builds every record to the schema already; conforming it again per
    # record is pure overhead.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapWiseRockCsv, plan: FilePlan) -> None:
        self.plan = plan
        self.skip_bad_rows = tap.config["on_bad_row"] == "skip"
        self.add_metadata = tap.config["add_metadata_columns"]
        properties = {column: json_schema(kind, nullable=column not in plan.keys)
                      for column, kind in zip(plan.columns, plan.kinds, strict=False)}
        schema = {"type": "object", "properties": properties}
        if self.add_metadata:
            schema["properties"].update(METADATA_COLUMNS)
        super().__init__(tap=tap, schema=schema, name=plan.stream)
        self.primary_keys = plan.keys
        self.dialect = tap.dialect
        self.message_writer = tap.message_writer

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        skipped = 0
        rows = read_rows(self.plan.path, self.dialect)
        next(rows, None)  # the header
        for row in rows:
            record = row if isinstance(row, BadRow) else self.plan.check(row)
            if isinstance(record, BadRow):
                if not self.skip_bad_rows:
                    raise CsvInputError(f"{self.plan.label} line {record.lineno}: {record.reason}")
                skipped += 1
                self.logger.warning("Skipped bad row: %s line %d: %s", self.plan.label, record.lineno, record.reason)
                continue
            if self.add_metadata:
                record["_sdc_source_file"] = self.plan.label
                record["_sdc_source_lineno"] = row.lineno
            yield record
        if skipped:
            self.logger.warning("Skipped %d bad rows in %s.", skipped, self.plan.label)
        # Only reached once every row has been read and written.
        self.message_writer.release_activate_version()

