"""The first pass over a file: its columns, their kinds and its keys, from every row."""

from __future__ import annotations

import dataclasses
import typing as t

from tap_wiserock_csv.checks import BadRowPolicy, CheckedBlock, RowCheck, checked_blocks, shown
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.keys import KeyHashes, find_duplicate
from tap_wiserock_csv.kinds import ColumnProfile
from tap_wiserock_csv.layout import Layout, refuse_nothing_after_skipped_lines
from tap_wiserock_csv.reader import CHUNK_BYTES, CsvReader, read_ahead

if t.TYPE_CHECKING:
    import logging
    import pathlib

    from tap_wiserock_csv.rows import Dialect


@dataclasses.dataclass(frozen=True)
class FileOptions:
    """Everything that decides how one file is read and typed (part of its cache key)."""

    path: pathlib.Path
    label: str  # how messages name the file
    stream: str
    dialect: Dialect
    null_values: tuple[str, ...]
    keys: tuple[str, ...] | None  # None: `id` when the file has one
    column_types: tuple[tuple[str, str], ...]
    skip_bad_rows: bool
    max_bad_rows: float | None
    duplicate_headers: str = "rename"  # or "fail"

    def identity(self) -> list[t.Any]:
        return [self.stream, dataclasses.astuple(self.dialect), self.null_values, self.keys, self.column_types,
                self.skip_bad_rows, self.max_bad_rows, self.duplicate_headers]


@dataclasses.dataclass
class FilePlan:
    """What the first pass (or a sample, `sample.py`) learnt; cached by the file's fingerprint."""

    headers: list[str]
    columns: list[str]
    kinds: list[str]
    keys: list[str]
    forced: dict[str, str]
    # The kinds come from a sample: the sync checks every value against them and widens a
    # column that a later value does not fit (`widen.py`).
    sampled: bool = False
    unseen: list[str] = dataclasses.field(default_factory=list)  # sampled columns without a value in the sample
    keys_checked: bool = True  # every row's key was found unique (the first pass, or a whole sync)

    def to_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, t.Any]) -> FilePlan:
        return cls(**data)


def read_checked(options: FileOptions, columns: list[str], check: RowCheck) -> t.Iterator[CheckedBlock]:
    """Every block of the file through the row check; the header must give the same columns."""
    reader = CsvReader(options.path, options.dialect, label=options.label)
    if reader.header is None or Layout.of(options, reader.header, reader.header_line).columns != columns:
        raise CsvInputError(f"{options.label}: the header changed while the tap was reading the file; run it again")
    for block in reader.blocks():
        yield check.apply(block)


@dataclasses.dataclass
class FileTyping:
    """A file opened for typing (its header read): the rows' check, the bad-row policy, and a
    profile of each column's values (forced ones aside)."""

    options: FileOptions
    reader: CsvReader
    layout: Layout
    check: RowCheck
    policy: BadRowPolicy
    profiles: dict[int, ColumnProfile]  # by position

    @classmethod
    def open(cls, options: FileOptions, chunk_bytes: int = CHUNK_BYTES) -> FileTyping | None:
        """None for a file without a header."""
        reader = CsvReader(options.path, options.dialect, label=options.label, chunk_bytes=chunk_bytes)
        if reader.header is None:
            refuse_nothing_after_skipped_lines(options, reader.source.lines_skipped)
            return None
        layout = Layout.of(options, reader.header, reader.header_line)
        return cls(options, reader, layout,
                   RowCheck(options.label, layout.columns, layout.keys, layout.forced, options.null_values),
                   BadRowPolicy(options.label, options.skip_bad_rows, options.max_bad_rows),
                   {index: ColumnProfile() for index, column in enumerate(layout.columns) if column not in layout.forced})

    def add(self, checked: CheckedBlock) -> None:
        for index, profile in self.profiles.items():
            column = checked.columns[index]
            profile.add(column.drop_null() if column.null_count else column)

    def plan(self, logger: logging.Logger, **sampled: t.Any) -> FilePlan:
        """The plan of the values added; `sampled`: FilePlan's fields for a sample."""
        layout = self.layout
        return FilePlan(layout.headers, layout.columns, kinds_of(self.options, layout, self.profiles, logger),
                        layout.keys, layout.forced, **sampled)


def plan_file(options: FileOptions, logger: logging.Logger) -> FilePlan | None:
    """Read every row: no later row can contradict a type, a bad row fails before anything is emitted."""
    typing = FileTyping.open(options)
    if typing is None:
        return None
    key_positions = [typing.layout.columns.index(key) for key in typing.layout.keys]
    with KeyHashes(key_positions) as key_hashes:
        for checked in checked_blocks(read_ahead(typing.reader.blocks()), typing.check, typing.policy):
            typing.add(checked)
            key_hashes.add(checked)
        plan = typing.plan(logger)
        if key_positions:
            refuse_duplicate_keys(options, typing.check, plan, key_hashes)
    return plan


def kinds_of(options: FileOptions, layout: Layout, profiles: dict[int, ColumnProfile], logger: logging.Logger) -> list[str]:
    """Each column's kind: forced, or from its profile (by position)."""
    kinds = [layout.forced.get(column) or profiles[index].kind(column) for index, column in enumerate(layout.columns)]
    for index, profile in profiles.items():
        if profile.sub_microseconds is not None and kinds[index] == "string":
            log_sub_microseconds(logger, options.label, layout.columns[index], profile.sub_microseconds)
    return kinds


def log_sub_microseconds(logger: logging.Logger, label: str, column: str, value: str) -> None:
    logger.info("Column %r of %s is text: %s has digits beyond microseconds, which a timestamp cannot hold (force "
                "the column to date-time with column_types to cut them).", column, label, shown(value))


def refuse_duplicate_keys(options: FileOptions, check: RowCheck, plan: FilePlan, key_hashes: KeyHashes) -> None:
    """Fail naming a key that repeats, two of its lines and the fix; `key_hashes` hold every row's key."""
    positions = [plan.columns.index(key) for key in plan.keys]
    found = find_duplicate(lambda: read_checked(options, plan.columns, check), positions,
                           [plan.kinds[position] for position in positions], key_hashes)
    if found is None:
        return
    values, first, second = found
    key = ", ".join(plan.keys)
    value = ", ".join(shown(text) for text in values)
    others = [column for column in plan.columns if column not in plan.keys][:1] or ["<column>"]
    example = ", ".join(f'"{column}"' for column in [*plan.keys, *others])
    raise CsvInputError(
        f"{options.label}: the key ({key}) is not unique: {value} is on lines {first} and {second}; loading would "
        f"merge those rows. Set this file's keys in the files setting, e.g. "
        f'{{"path": "{options.path.name}", "keys": [{example}]}}, or "keys": [] for none')
