"""The first pass over a file: its columns, their kinds and its keys, from every row."""

from __future__ import annotations

import dataclasses
import typing as t

from tap_wiserock_csv.checks import BadRowPolicy, CheckedBlock, RowCheck, checked_blocks, shown
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.keys import KeyHashes, find_duplicate
from tap_wiserock_csv.kinds import ColumnProfile
from tap_wiserock_csv.naming import column_names, resolve_columns
from tap_wiserock_csv.reader import CsvReader, read_ahead

if t.TYPE_CHECKING:
    import logging
    import pathlib

    from tap_wiserock_csv.rows import Dialect

_USUAL_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


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

    def identity(self) -> list[t.Any]:
        return [self.stream, dataclasses.astuple(self.dialect), self.null_values, self.keys, self.column_types,
                self.skip_bad_rows, self.max_bad_rows]


@dataclasses.dataclass
class Layout:
    """A header row read with the file's options: column names, forced kinds and keys."""

    headers: list[str]
    columns: list[str]
    forced: dict[str, str]
    keys: list[str]

    @classmethod
    def of(cls, options: FileOptions, headers: list[str], line: int) -> Layout:
        _refuse_wrong_delimiter(options, headers, line)
        columns = column_names(headers, options.label, line)
        requested = dict(options.column_types)
        types = resolve_columns(requested, headers, columns, source=options.label, what="column_types columns")
        forced = {types[name]: kind for name, kind in requested.items()}
        if options.keys is None:
            keys = ["id"] if "id" in columns else []
        else:
            by_name = resolve_columns(options.keys, headers, columns, source=options.label, what="key columns")
            keys = list(dict.fromkeys(by_name[name] for name in options.keys))
        return cls(headers, columns, forced, keys)


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


def _refuse_wrong_delimiter(options: FileOptions, headers: list[str], line: int) -> None:
    if len(headers) != 1:
        return
    for delimiter, name in _USUAL_DELIMITERS.items():
        if delimiter != options.dialect.delimiter and delimiter in headers[0]:
            raise CsvInputError(
                f"{options.label} line {line}: the header is one column holding a {name} ({delimiter!r}): the file "
                f"seems to be {name}-separated; set \"delimiter\": {delimiter!r} in its files entry "
                f"({{\"path\": \"{options.path.name}\", \"delimiter\": {delimiter!r}}}) or the delimiter setting"
                .replace("'", '"'))


def read_checked(options: FileOptions, columns: list[str], check: RowCheck) -> t.Iterator[CheckedBlock]:
    """Every block of the file through the row check; the header must give the same columns."""
    reader = CsvReader(options.path, options.dialect, label=options.label)
    if reader.header is None or column_names(reader.header, options.label, reader.header_line) != columns:
        raise CsvInputError(f"{options.label}: the header changed while the tap was reading the file; run it again")
    for block in reader.blocks():
        yield check.apply(block)


def plan_file(options: FileOptions, logger: logging.Logger) -> FilePlan | None:
    """Read every row: no later row can contradict a type, a bad row fails before anything is emitted."""
    reader = CsvReader(options.path, options.dialect, label=options.label)
    if reader.header is None:
        return None
    layout = Layout.of(options, reader.header, reader.header_line)
    check = RowCheck(options.label, layout.columns, layout.keys, layout.forced, options.null_values)
    policy = BadRowPolicy(options.label, options.skip_bad_rows, options.max_bad_rows)
    profiles = {index: ColumnProfile() for index, column in enumerate(layout.columns) if column not in layout.forced}
    key_positions = [layout.columns.index(key) for key in layout.keys]
    with KeyHashes(key_positions) as key_hashes:
        for checked in checked_blocks(read_ahead(reader.blocks()), check, policy):
            for index, profile in profiles.items():
                column = checked.columns[index]
                profile.add(column.drop_null() if column.null_count else column)
            key_hashes.add(checked)
        kinds = [layout.forced.get(column) or profiles[index].kind(column)
                 for index, column in enumerate(layout.columns)]
        for index, profile in profiles.items():
            if profile.sub_microseconds is not None and kinds[index] == "string":
                logger.info("Column %r of %s is text: %s has digits beyond microseconds, which a timestamp cannot "
                            "hold (force the column to date-time with column_types to cut them).",
                            layout.columns[index], options.label, shown(profile.sub_microseconds))
        plan = FilePlan(layout.headers, layout.columns, kinds, layout.keys, layout.forced)
        if key_positions:
            _refuse_duplicate_keys(options, check, plan, key_hashes)
    return plan


def _refuse_duplicate_keys(options: FileOptions, check: RowCheck, plan: FilePlan, key_hashes: KeyHashes) -> None:
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
