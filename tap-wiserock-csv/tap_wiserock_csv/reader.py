"""Streaming a CSV file row by row, with line numbers, nulls and bad rows made explicit.

Memory is flat: one row at a time, whatever the file's size.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import re
import typing as t

if t.TYPE_CHECKING:
    import pathlib

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes kept by errors="surrogateescape"


@dataclasses.dataclass(frozen=True)
class Dialect:
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"


@dataclasses.dataclass
class Row:
    """A row's fields, None for null: an empty unquoted field, or NULL in any case."""

    lineno: int  # the physical line the row starts on (quoted newlines count)
    values: list[str | None]


@dataclasses.dataclass
class BadRow:
    lineno: int
    reason: str


class _CountingLines:
    """Feeds csv.reader physical lines while keeping the raw text of the current row."""

    def __init__(self, text: t.IO[str]) -> None:
        self._text = text
        self.count = 0
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


def read_rows(path: pathlib.Path, dialect: Dialect) -> t.Iterator[Row | BadRow]:
    """Every row of the file, header first; a BOM is dropped, blank lines are passed over."""
    with path.open("rb") as binary:
        if binary.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            binary.seek(0)
        text = io.TextIOWrapper(binary, encoding=dialect.encoding, errors="surrogateescape", newline="")
        lines = _CountingLines(text)
        reader = csv.reader(lines, delimiter=dialect.delimiter, quotechar=dialect.quotechar, strict=True)
        while True:
            start = lines.count + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                lines.take()
                yield BadRow(start, f"malformed CSV: {exc}")
                continue
            raw = lines.take()
            if not fields:
                continue
            if undecodable := _UNDECODABLE.search(raw):
                byte = ord(undecodable[0]) - 0xDC00
                yield BadRow(start, f"byte 0x{byte:02x} cannot be decoded as {dialect.encoding}")
                continue
            yield Row(start, _with_nulls(fields, raw, dialect))


def _with_nulls(fields: list[str], raw: str, dialect: Dialect) -> list[str | None]:
    # csv.reader returns "" for both `,,` and `,"",`; only the unquoted one is null. Quoting
    # matters only for empty fields, and only a row holding `""` can have a quoted one.
    quoted = _quoted_fields(raw, dialect) if "" in fields and '""' in raw else None
    if quoted is None or len(quoted) != len(fields):
        return [None if not value or (len(value) == 4 and value.upper() == "NULL") else value for value in fields]
    return [None if (not value and not was_quoted) or (len(value) == 4 and value.upper() == "NULL") else value
            for value, was_quoted in zip(fields, quoted, strict=False)]


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
