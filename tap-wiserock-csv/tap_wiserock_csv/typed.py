"""Checked blocks converted whole-column: an Arrow table (parquet) and, from it, Singer records.

RECORD messages, jsonl batch files and parquet batch files all come from the same table,
so that the three carry the same values:
- number: the exact decimal text as written (`kinds.exact_number_text`); records hold it as
  `decimal.Decimal`, which the msgspec writer emits as a JSON number with every digit;
- date-time: a UTC instant (Arrow timestamp[us, UTC]); records hold RFC 3339 text in UTC,
  except an instant whose UTC form leaves the years 1-9999 (`9999-12-31 23:59:59-05`),
  which keeps its own offset (`9999-12-31T23:59:59-05:00`): the same instant, in a form
  every RFC 3339 reader (and PostgreSQL) accepts;
- date: Arrow date32; records hold `YYYY-MM-DD`.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.kinds import ARROW_TYPES, sub_microsecond_count, to_arrow

if t.TYPE_CHECKING:
    from tap_wiserock_csv.checks import CheckedBlock

RECORD_SLICE = 4096
METADATA_FIELDS = [pa.field("_sdc_source_file", pa.string()), pa.field("_sdc_source_lineno", pa.int64())]
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(\.\d{1,6})?\d*(?:([Zz])|([+-]\d{2}):?(\d{2})?)?")


def arrow_schema(columns: list[str], kinds: list[str], keys: list[str], *, metadata: bool) -> pa.Schema:
    fields = [pa.field(column, ARROW_TYPES[kind], nullable=column not in keys)
              for column, kind in zip(columns, kinds, strict=True)]
    return pa.schema(fields + (METADATA_FIELDS if metadata else []))


@dataclasses.dataclass
class TypedBlock:
    table: pa.Table
    kinds: list[str]  # of the table's columns, metadata columns as "string"/"integer"
    texts: dict[int, pa.Array]  # the date-time columns as written, by position in the table

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def records(self, start: int = 0, stop: int | None = None) -> t.Iterator[dict]:
        """Rows start..stop as Singer records (see the module docstring for each kind's form).

        Converted a slice at a time: Python objects for a whole block would cost more
        memory than the block itself.
        """
        stop = self.num_rows if stop is None else stop
        names = self.table.column_names
        for first in range(start, stop, RECORD_SLICE):
            size = min(RECORD_SLICE, stop - first)
            values = [_rfc3339(column.slice(first, size).combine_chunks(), self.texts[index].slice(first, size))
                      if kind == "date-time" else _python_values(column.slice(first, size).combine_chunks(), kind)
                      for index, (column, kind) in enumerate(zip(self.table.columns, self.kinds, strict=True))]
            yield from (dict(zip(names, row, strict=True)) for row in zip(*values, strict=True))


@dataclasses.dataclass
class Converter:
    """Converts checked blocks of one file to the stream's schema (selected columns, metadata)."""

    label: str
    columns: list[str]
    kinds: list[str]
    selected: list[int]  # positions of the columns to emit
    schema: pa.Schema
    metadata: bool
    sub_microseconds_cut: dict[str, int] = dataclasses.field(default_factory=dict)  # forced date-time columns

    def convert(self, block: CheckedBlock, converted: t.Mapping[int, pa.Array] | None = None) -> TypedBlock:
        """`converted`: columns already converted to their kind, by position."""
        arrays = []
        texts: dict[int, pa.Array] = {}
        for position in self.selected:
            column, kind = self.columns[position], self.kinds[position]
            values = block.columns[position]
            if kind == "date-time" and column in self.sub_microseconds_cut:
                self.sub_microseconds_cut[column] += sub_microsecond_count(values)
            if kind == "date-time":
                texts[len(arrays)] = values
            if converted and position in converted:
                arrays.append(converted[position])
                continue
            try:
                arrays.append(to_arrow(kind, values))
            except pa.ArrowInvalid as exc:
                # Only a catalog that no longer matches the file gets here: its types were checked.
                raise CsvInputError(f"{self.label} lines {block.lines[0]}-{block.lines[-1]}: column {column!r} does "
                                    f"not fit type {kind} ({exc}); re-run discovery") from None
        kinds = [self.kinds[position] for position in self.selected]
        if self.metadata:
            arrays += [pa.repeat(pa.scalar(self.label, pa.string()), block.num_rows),
                       pa.array(block.lines, pa.int64())]
            kinds += ["string", "integer"]
        return TypedBlock(pa.Table.from_arrays(arrays, schema=self.schema), kinds, texts)


def _python_values(array: pa.Array, kind: str) -> list:
    if kind == "number":
        return [None if value is None else decimal.Decimal(value) for value in array.to_pylist()]
    if kind == "date":
        return array.cast(pa.string()).to_pylist()  # YYYY-MM-DD
    return array.to_pylist()


def _rfc3339(instants: pa.Array, texts: pa.Array) -> list[str | None]:
    if not len(instants):
        return []
    text = pc.strftime(instants, "%Y-%m-%dT%H:%M:%S", locale="C")  # seconds with 6 decimals
    text = pc.binary_join_element_wise(pc.replace_substring_regex(text, r"\.000000$", ""), "+00:00", "")
    values = text.to_pylist()
    years = pc.year(instants)
    outside = pc.or_(pc.less(years, 1), pc.greater(years, 9999)).fill_null(False)
    for index in np.flatnonzero(outside.to_numpy(zero_copy_only=False)):
        values[index] = _in_its_own_offset(texts[int(index)].as_py())
    return values


def _in_its_own_offset(text: str) -> str:
    """An instant outside the years 1-9999 in UTC, in the offset it was written with (RFC 3339 form)."""
    match = _RFC3339.fullmatch(text)
    if match is None:  # not reachable: the value passed the date-time pattern
        raise CsvInputError(f"date-time {text!r} cannot be written in RFC 3339 form")
    date, hours_minutes, seconds, fraction, _, offset_hours, offset_minutes = match.groups()
    return f"{date}T{hours_minutes}{seconds or ':00'}{fraction or ''}{offset_hours}:{offset_minutes or '00'}"
