"""The first pass over a file: its columns, their kinds and its keys, from every row."""

from __future__ import annotations

import dataclasses
import typing as t

from tap_wiserock_csv.checks import BadRowPolicy, CheckedBlock, RowCheck, checked_blocks, shown
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.keys import KeyHashes, find_duplicate
from tap_wiserock_csv.kinds import ColumnProfile
from tap_wiserock_csv.layout import Layout, refuse_nothing_after_skipped_lines
from tap_wiserock_csv.reader import CsvReader

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
    """What the first pass learnt; cached by the file's fingerprint."""

    headers: list[str]
    columns: list[str]
    kinds: list[str]
    keys: list[str]
    forced: dict[str, str]

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


def plan_file(options: FileOptions, logger: logging.Logger) -> FilePlan | None:
    """Read every row: no later row can contradict a type, a bad row fails before anything is emitted."""
    reader = CsvReader(options.path, options.dialect, label=options.label)
    if reader.header is None:
        refuse_nothing_after_skipped_lines(options, reader.source.lines_skipped)
        return None
    layout = Layout.of(options, reader.header, reader.header_line)
    check = RowCheck(options.label, layout.columns, layout.keys, layout.forced, options.null_values)
    policy = BadRowPolicy(options.label, options.skip_bad_rows, options.max_bad_rows)
    profiles = {index: ColumnProfile() for index, column in enumerate(layout.columns) if column not in layout.forced}
    key_positions = [layout.columns.index(key) for key in layout.keys]
    key_hashes = KeyHashes(key_positions)
    for checked in checked_blocks(reader.blocks(), check, policy):
        for index, profile in profiles.items():
            column = checked.columns[index]
            profile.add(column.drop_null() if column.null_count else column)
        key_hashes.add(checked)
    kinds = [layout.forced.get(column) or profiles[index].kind(column) for index, column in enumerate(layout.columns)]
    for index, profile in profiles.items():
        if profile.sub_microseconds is not None and kinds[index] == "string":
            logger.info("Column %r of %s is text: %s has digits beyond microseconds, which a timestamp cannot hold "
                        "(force the column to date-time with column_types to cut them).",
                        layout.columns[index], options.label, shown(profile.sub_microseconds))
    plan = FilePlan(layout.headers, layout.columns, kinds, layout.keys, layout.forced)
    if key_positions:
        _refuse_duplicate_keys(options, check, plan, key_hashes.repeated())
    return plan


def _refuse_duplicate_keys(options: FileOptions, check: RowCheck, plan: FilePlan, candidates: set[int]) -> None:
    positions = [plan.columns.index(key) for key in plan.keys]
    found = find_duplicate(lambda: read_checked(options, plan.columns, check), positions,
                           [plan.kinds[position] for position in positions], candidates)
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
