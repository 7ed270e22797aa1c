"""Types that follow the values during the sync: a sampled plan's kinds, widened where a value does not fit.

Every block's values are added to each column's profile (`kinds.ColumnProfile`, started from
the kind the column has so far), so that at the end of the file each column has the kind a
first pass over every value would have given it. When a block changes a column's kind, the
rows already sent hold values of the old kind; the change is *exact* when the loader's
conversion of those values (`old::text::new` in PostgreSQL) gives back what the file wrote:

- no value of the column was sent yet (only nulls): any change;
- integer -> number: the same numbers;
- integer or number -> text: when every value sent was written as PostgreSQL prints it back
  (`bigint::text`, `numeric::text`): integers other than `-0`; numbers with digits and an
  optional fraction (`1.50`, `-0.5`), not `1e3`, `.5`, `-0.0` or integers over 4000 digits
  (sent with a `.0`);
- date -> text: dates are only ever written `YYYY-MM-DD`, which a date prints as (DateStyle ISO).

Every other change cannot be exact for the rows already sent: a boolean (`Y` sent as true),
a date-time (sent as a UTC instant), a number written `1e3` becoming text. Then the stream
starts over (`StartOver`): the whole file is typed first and sent again as a new version.
"""

from __future__ import annotations

import dataclasses
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tap_wiserock_csv.checks import shown
from tap_wiserock_csv.kinds import ARROW_TYPES, LONGEST_INTEGER_LITERAL, NUMERIC_DIGITS_AFTER, ColumnProfile, misfits

if t.TYPE_CHECKING:
    from tap_wiserock_csv.checks import CheckedBlock

# What numeric::text prints: digits, an optional fraction; no exponent, no leading zeros, no bare
# point. `-0` and `-0.00` print without their sign (a negative number starting `-0` needs a nonzero
# digit after its point).
_PRINTED_NUMBER = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$"
_SIGNED_ZERO = r"^-0(?:\.0*)?$"
_PRINTED_LIMIT = min(LONGEST_INTEGER_LITERAL, NUMERIC_DIGITS_AFTER)  # longer integers are sent with a ".0"


@dataclasses.dataclass
class Change:
    """A column's kind changed at a block: the rows sent before hold values of `old`."""

    column: str
    old: str
    new: str
    exact: bool  # the loader's conversion of the values sent gives back what the file wrote
    line: int  # of the first value that `old` does not hold (for a column without values so far: its first one)
    value: str | None  # that value (None for a column without values so far)

    def __str__(self) -> str:
        held = f" ({shown(self.value)} on line {self.line})" if self.value is not None else f" (from line {self.line})"
        return f"column {self.column!r} {self.old} -> {self.new}{held}"


class StartOver(Exception):
    """A change that the rows already sent cannot follow exactly: the stream must start over."""

    def __init__(self, changes: list[Change]) -> None:
        super().__init__("; ".join(map(str, changes)))
        self.changes = changes


@dataclasses.dataclass
class _Column:
    name: str
    kind: str
    profile: ColumnProfile
    sent: bool = False  # a value (not null) was sent in this column
    printed: bool = True  # every integer or number sent reads back as written through text


class StreamTyping:
    """The kinds of one file's columns as its blocks go by (forced columns never change)."""

    def __init__(self, columns: list[str], kinds: list[str], *, unseen: t.Iterable[str], forced: t.Iterable[str]) -> None:
        unseen, forced = set(unseen), set(forced)
        self.converted: dict[int, pa.Array] = {}
        self._columns = {
            position: _Column(column, kind, ColumnProfile() if column in unseen else ColumnProfile.of_kind(kind, column))
            for position, (column, kind) in enumerate(zip(columns, kinds, strict=True)) if column not in forced}

    @property
    def kinds(self) -> dict[str, str]:
        """The kinds of the columns that follow their values, as they are now."""
        return {column.name: column.kind for column in self._columns.values()}

    @property
    def sub_microseconds(self) -> dict[str, str]:
        """Columns that are text because of a value with digits beyond microseconds, and that value."""
        return {column.name: column.profile.sub_microseconds for column in self._columns.values()
                if column.kind == "string" and column.profile.sub_microseconds is not None}

    def observe(self, block: CheckedBlock) -> list[Change]:
        """Add a block's values (before it is sent); the columns whose kind this changes. The
        columns its checks converted on the way are left in `converted`, by position."""
        changes = []
        self.converted = {}
        for position, column in self._columns.items():
            values = block.columns[position]
            present = None
            if values.null_count:
                present = values.is_valid()
                values = values.filter(present)
            if not len(values):
                continue
            old = column.kind
            printed: bool | None = None  # the block's values read back as written through text
            converted = None  # the block's values converted by the check, when it did
            if old == "number" and column.printed and _printed_numbers(values):
                printed = True  # they fit number too: the profile's pattern can be spared
            else:
                column.profile.add(values)
                column.kind = column.profile.kind(column.name)
                converted = column.profile.converted
            if column.kind != old:
                changes.append(_change(column, old, values, present, block))
            if converted is not None and converted.type == ARROW_TYPES[column.kind]:
                if len(values) == block.num_rows:  # no nulls: the column itself converted
                    self.converted[position] = converted
                printed = True  # integers as bigint prints them (`kinds.written_integers`)
            if column.kind == "integer" and printed is None:
                printed = not pc.any(pc.starts_with(values, "-0")).as_py()  # the one integer bigint prints otherwise
            elif column.kind == "number" and printed is None:
                printed = column.printed and old != "number" and _printed_numbers(values)
            column.printed = column.printed and printed is not False
            column.sent = True
        return changes


def _printed_numbers(values: pa.Array) -> bool:
    """Every value is a number written as numeric::text prints it (so it also fits number)."""
    if (pc.max(pc.binary_length(values)).as_py() or 0) > _PRINTED_LIMIT or \
            not pc.all(pc.match_substring_regex(values, _PRINTED_NUMBER)).as_py():
        return False
    negative_zeros = pc.starts_with(values, "-0")  # -0.5 prints so; -0 and -0.00 do not: the rare look
    return not pc.any(negative_zeros).as_py() or \
        not pc.any(pc.match_substring_regex(values.filter(negative_zeros), _SIGNED_ZERO)).as_py()


def _exact(column: _Column, old: str) -> bool:
    if not column.sent:
        return True  # the rows sent hold nulls only in this column
    new = column.kind
    if (old, new) == ("integer", "number"):
        return True
    return new == "string" and (old == "date" or (old in {"integer", "number"} and column.printed))


def _change(column: _Column, old: str, values: pa.Array, present: pa.Array | None, block: CheckedBlock) -> Change:
    """`values`: the block's non-null values of the column; `present`: which rows hold them (None: all)."""
    held = old != "string"  # (a string column changes only when it had no value so far)
    misfit = misfits(old, values).nonzero()[0] if held else []
    index = int(misfit[0]) if len(misfit) else 0  # (a boolean's 0/1 and yes/no each fit `boolean`: the first value)
    row = index if present is None else int(np.flatnonzero(present.to_numpy(zero_copy_only=False))[index])
    return Change(column.name, old, column.kind, _exact(column, old), int(block.lines[row]),
                  values[index].as_py() if held else None)
