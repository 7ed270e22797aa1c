"""The rules every row must pass, applied the same way by the first pass and by the sync.

A block from the reader becomes a `CheckedBlock`: null markers applied, rows that break a
rule taken out and listed with their line and reason. Which rows are bad therefore never
depends on the pass or on the output mode.
"""

from __future__ import annotations

import dataclasses
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.kinds import misfits, null_markers
from tap_wiserock_csv.rows import BadRow, Block

if t.TYPE_CHECKING:
    import logging

MAX_LOGGED_BAD_ROWS = 100
_MISFIT = {"boolean": "a boolean", "integer": "an integer", "number": "a number", "date": "a date (YYYY-MM-DD)",
           "date-time": "an ISO 8601 date-time", "string": "a string"}


def shown(value: str, limit: int = 60) -> str:
    """A value as error messages quote it: cut short."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


@dataclasses.dataclass
class CheckedBlock:
    columns: list[pa.Array]  # strings; null for empty unquoted fields and null markers
    lines: np.ndarray
    bad_rows: list[BadRow]
    empty_rows: int

    @property
    def num_rows(self) -> int:
        return len(self.lines)


@dataclasses.dataclass
class RowCheck:
    """Keys not null; values fit their declared kinds (`column_types`, or a catalog's types)."""

    label: str
    columns: list[str]
    keys: list[str]
    forced: dict[str, str]  # column -> kind from column_types: a misfit is a bad row
    null_values: t.Sequence[str]
    catalog: dict[str, str] = dataclasses.field(default_factory=dict)  # column -> kind: a misfit fails the file

    def __post_init__(self) -> None:
        self._markers = null_markers(self.null_values)
        self._marker_lengths = pc.unique(pc.binary_length(self._markers))
        self._key_positions = [self.columns.index(key) for key in self.keys]

    def apply(self, block: Block) -> CheckedBlock:
        columns = [self._with_null_markers(column) for column in block.columns]
        reasons: dict[int, str] = {}
        for position in self._key_positions:
            if columns[position].null_count:
                for index in np.flatnonzero(columns[position].is_null().to_numpy(zero_copy_only=False)):
                    reasons.setdefault(int(index), f"key column {self.columns[position]!r} is null")
        for column, kind in self.forced.items():
            values = columns[self.columns.index(column)]
            for index, value in _misfitting(kind, values):
                reasons.setdefault(index, f"column {column!r}: {shown(value)} is not {_MISFIT[kind]} "
                                          f"(type forced to {kind})")
        bad_rows = block.bad_rows
        lines = block.lines
        if reasons:
            bad_rows = sorted([*bad_rows, *(BadRow(int(lines[index]), reason) for index, reason in reasons.items())],
                              key=lambda row: row.lineno)
            keep = np.ones(len(lines), dtype=bool)
            keep[list(reasons)] = False
            selector = pa.array(keep)
            columns = [column.filter(selector) for column in columns]
            lines = lines[keep]
        for column, kind in self.catalog.items():  # rows that are bad anyway are not held against the catalog
            self._fail_on_catalog_misfit(column, kind, columns, lines)
        return CheckedBlock(columns, lines, bad_rows, block.empty_rows)

    def _with_null_markers(self, column: pa.Array) -> pa.Array:
        if not len(self._markers):
            return column
        # Only a value as long as a marker can be one: most columns skip the lookup (5x dearer).
        if not pc.any(pc.is_in(pc.binary_length(column), self._marker_lengths)).as_py():
            return column
        marked = pc.is_in(column, self._markers)
        if not pc.any(marked).as_py():
            return column
        return pc.if_else(marked, pa.scalar(None, pa.string()), column)

    def _fail_on_catalog_misfit(self, column: str, kind: str, columns: list[pa.Array], lines: np.ndarray) -> None:
        for index, value in _misfitting(kind, columns[self.columns.index(column)]):
            raise CsvInputError(f"{self.label} line {lines[index]}: column {column!r}: {shown(value)} is not "
                                f"{_MISFIT[kind]}, the type the catalog gives it: the file changed since the "
                                "catalog was made; re-run discovery")


def _misfitting(kind: str, values: pa.Array) -> t.Iterator[tuple[int, str]]:
    """(row index, value) of each non-null value that does not fit `kind`."""
    if kind == "string":
        return
    present = np.flatnonzero(values.is_valid().to_numpy(zero_copy_only=False))
    compact = values.drop_null() if values.null_count else values
    for index in np.flatnonzero(misfits(kind, compact)):
        yield int(present[index]), compact[int(index)].as_py()


@dataclasses.dataclass
class BadRowPolicy:
    """`on_bad_row` and `max_bad_rows` for one file: fail at once, or skip up to a limit."""

    label: str
    skip: bool
    max_bad_rows: float | None
    logger: logging.Logger | None = None  # set in the sync: each skipped row is logged there
    bad: int = 0
    first: BadRow | None = None

    def take(self, bad_rows: list[BadRow]) -> None:
        if not bad_rows:
            return
        if not self.skip:
            raise CsvInputError(f"{self.label} line {bad_rows[0].lineno}: {bad_rows[0].reason}")
        self.first = self.first or bad_rows[0]
        for row in bad_rows:
            self.bad += 1
            if self.logger is not None and self.bad <= MAX_LOGGED_BAD_ROWS:
                self.logger.warning("Skipped bad row: %s line %d: %s", self.label, row.lineno, row.reason)
        limit = self.max_bad_rows
        if limit is not None and limit >= 1 and self.bad > limit:
            self._fail(f"more than max_bad_rows ({limit:g})")

    def finish(self, good: int) -> None:
        """At the end of the file: the share limit, and a file of bad rows only always fails."""
        if not self.bad:
            return
        total = good + self.bad
        if not good:
            self._fail("every row is bad; nothing would be loaded and the table would be emptied")
        limit = self.max_bad_rows
        if limit is not None and limit < 1 and self.bad > limit * total:
            self._fail(f"more than max_bad_rows ({limit * 100:g} % of {total} rows)")
        if self.logger is not None:
            if self.bad > MAX_LOGGED_BAD_ROWS:
                self.logger.warning("... %d more bad rows not shown.", self.bad - MAX_LOGGED_BAD_ROWS)
            self.logger.warning("Skipped %d bad rows in %s.", self.bad, self.label)

    def _fail(self, why: str) -> t.NoReturn:
        first = f"; first: line {self.first.lineno}: {self.first.reason}" if self.first else ""
        raise CsvInputError(f"{self.label}: {self.bad} bad rows, {why}{first}")


def checked_blocks(blocks: t.Iterable[Block], check: RowCheck, policy: BadRowPolicy) -> t.Iterator[CheckedBlock]:
    """A pass over a file: each block checked, its bad rows put to the policy, which has the
    last word once the file has ended (the first pass and the sync count the same way)."""
    good = 0
    for block in blocks:
        checked = check.apply(block)
        policy.take(checked.bad_rows)
        good += checked.num_rows
        yield checked
    policy.finish(good)
