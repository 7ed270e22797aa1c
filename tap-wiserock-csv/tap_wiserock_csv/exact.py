"""The exact reader: Python's csv module (strict) with physical line counting.

It reads from wherever the fast reader stopped, names every bad row with its line and
reason, and is the reference the fast reader is tested against.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import typing as t

import numpy as np
import pyarrow as pa

from tap_wiserock_csv.rows import BadRow, Block, Dialect
from tap_wiserock_csv.source import ESCAPE

EXACT_BLOCK_ROWS = 50_000
_UNDECODABLE = re.compile("[\udc00-\udcff]")  # bytes carried through by the escape handler
_FIELD_LIMIT = 2**31 - 1  # a quoted field may be as long as the file


@dataclasses.dataclass
class Row:
    lineno: int  # the physical line the row starts on
    values: list[str | None]  # None for an empty unquoted field


class _Chunks(io.RawIOBase):
    """A byte stream over a first buffer and the chunks that follow it."""

    def __init__(self, first: bytes, rest: t.Iterator[bytes]) -> None:
        super().__init__()
        self._current = memoryview(first)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, target: t.Any) -> int:
        while not self._current:
            chunk = next(self._rest, None)
            if chunk is None:
                return 0
            self._current = memoryview(chunk)
        size = min(len(target), len(self._current))
        target[:size] = self._current[:size]
        self._current = self._current[size:]
        return size


class _CountingLines:
    """Feeds csv.reader physical lines while keeping the raw text of the current row."""

    def __init__(self, text: t.IO[str], first_line: int) -> None:
        self._text = text
        self.count = first_line - 1
        self.current: list[str] = []

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> str:
        line = next(self._text)
        self.count += 1
        self.current.append(line)
        return line

    def take(self) -> str:
        raw = "".join(self.current) if len(self.current) != 1 else self.current[0]
        self.current = []
        return raw


class ExactRows:
    """Python's csv (strict) over the UTF-8 bytes from `first` on: each row, or why it is bad."""

    def __init__(self, first: bytes, rest: t.Iterator[bytes], first_line: int, dialect: Dialect) -> None:
        # csv's limit is process-wide; 128 KiB would refuse valid large fields (notes, JSON, HTML).
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        text = io.TextIOWrapper(io.BufferedReader(_Chunks(first, rest), 1 << 20), encoding="utf-8",
                                errors=ESCAPE, newline="")
        self._lines = _CountingLines(text, first_line)
        self._reader = csv.reader(self._lines, delimiter=dialect.delimiter, quotechar=dialect.quotechar, strict=True)
        self._dialect = dialect
        self.raw_chars = 0

    def __iter__(self) -> t.Iterator[Row | BadRow]:
        lines = self._lines
        while True:
            start = lines.count + 1
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                lines.take()
                yield BadRow(start, f"malformed CSV: {exc}")
                continue
            raw = lines.take()
            self.raw_chars += len(raw)
            if not fields:
                continue
            if undecodable := _UNDECODABLE.search(raw):
                byte = ord(undecodable[0]) - 0xDC00
                yield BadRow(start, f"byte 0x{byte:02x} cannot be decoded as {self._dialect.encoding}")
                continue
            yield Row(start, _with_nulls(fields, raw, self._dialect))


def exact_blocks(rows: ExactRows, width: int, chunk_bytes: int) -> t.Iterator[Block]:
    columns: list[list[str | None]] = [[] for _ in range(width)]
    lines: list[int] = []
    bad_rows: list[BadRow] = []
    empty_rows = 0

    def block() -> Block:
        return Block([pa.array(values, pa.string()) for values in columns], np.array(lines, dtype=np.int64),
                     bad_rows, empty_rows)

    for row in rows:
        if isinstance(row, BadRow):
            bad_rows.append(row)
        elif all(value is None for value in row.values):
            empty_rows += 1
        elif len(row.values) != width:
            bad_rows.append(BadRow(row.lineno, f"expected {width} fields, found {len(row.values)}"))
        else:
            lines.append(row.lineno)
            for values, value in zip(columns, row.values, strict=True):
                values.append(value)
        if len(lines) >= EXACT_BLOCK_ROWS or rows.raw_chars >= chunk_bytes:
            yield block()
            columns, lines, bad_rows, empty_rows = [[] for _ in range(width)], [], [], 0
            rows.raw_chars = 0
    if lines or bad_rows or empty_rows:
        yield block()


def _with_nulls(fields: list[str], raw: str, dialect: Dialect) -> list[str | None]:
    # csv.reader returns "" for both `,,` and `,"",`; only the unquoted one is null. Quoting
    # matters only for empty fields, and only a row holding a quote can have a quoted one.
    if "" not in fields:
        return list(fields)
    quoted = _quoted_fields(raw, dialect) if dialect.quotechar in raw else None
    if quoted is None or len(quoted) != len(fields):
        return [value or None for value in fields]
    return [None if not value and not was_quoted else value for value, was_quoted in zip(fields, quoted, strict=True)]


def _quoted_fields(raw: str, dialect: Dialect) -> list[bool]:
    """For each field of one raw row, whether it was written in quotes."""
    text = raw.rstrip("\r\n")
    delimiter, quote = dialect.delimiter, dialect.quotechar
    flags: list[bool] = []
    position, end = 0, len(text)
    while True:
        if position < end and text[position] == quote:
            flags.append(True)
            position += 1
            while position < end:
                if text[position] == quote:
                    if position + 1 < end and text[position + 1] == quote:
                        position += 2
                        continue
                    position += 1
                    break
                position += 1
        else:
            flags.append(False)
        while position < end and text[position] != delimiter:
            position += 1
        if position >= end:
            return flags
        position += 1
        if position == end:
            flags.append(False)
            return flags
