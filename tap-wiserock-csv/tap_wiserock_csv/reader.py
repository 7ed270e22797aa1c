"""A CSV file read in blocks of string columns, with physical line numbers and bad rows explicit.

Two readers, one result. The fast one cuts the file into buffers of whole records (numpy
scan) and parses each with pyarrow's C++ CSV parser. The exact one is Python's `csv`
(strict) with line counting. The fast reader hands over to the exact one, from the buffer
where it stands, whenever the buffer is not plainly valid (malformed quoting, a quote in an
unquoted field, a wrong field count, bytes that are not UTF-8) or pyarrow and the scan
disagree on the record count; so bad rows are always found and named by the exact reader.

Memory is flat: one buffer (about `chunk_bytes`, or one record if larger) at a time.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.scan import Scan, scan
from tap_wiserock_csv.source import ESCAPE, Utf8Source

if t.TYPE_CHECKING:
    import pathlib

CHUNK_BYTES = 4 << 20  # measured: 8 MB is 5 % faster and costs 35 MB more peak memory
EXACT_BLOCK_ROWS = 50_000
_UNDECODABLE = re.compile("[\udc00-\udcff]")  # bytes carried through by the escape handler
_FIELD_LIMIT = 2**31 - 1  # a quoted field may be as long as the file


@dataclasses.dataclass(frozen=True)
class Dialect:
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"

    def check(self) -> None:
        if len(self.delimiter) != 1 or len(self.quotechar) != 1:
            raise CsvInputError("delimiter and quotechar must be one character each")
        if self.delimiter == self.quotechar or {self.delimiter, self.quotechar} & {"\r", "\n"}:
            raise CsvInputError("delimiter and quotechar must differ and must not be line breaks")

    @property
    def fast(self) -> bool:
        """pyarrow and the byte scan need one-byte (ASCII) delimiter and quote."""
        return self.delimiter.isascii() and self.quotechar.isascii()


@dataclasses.dataclass
class BadRow:
    lineno: int
    reason: str


@dataclasses.dataclass
class Block:
    """Consecutive rows as string columns; null is an empty unquoted field."""

    columns: list[pa.Array]
    lines: np.ndarray  # the physical line each row starts on
    bad_rows: list[BadRow]  # rows the reader refused, in file order
    empty_rows: int = 0  # rows holding only delimiters, passed over

    @property
    def num_rows(self) -> int:
        return len(self.lines)

    def keep(self, mask: np.ndarray) -> Block:
        """The rows where mask is true."""
        selector = pa.array(mask)
        return Block([column.filter(selector) for column in self.columns], self.lines[mask], self.bad_rows,
                     self.empty_rows)


class CsvReader:
    """Reads one file: `header` first (None for a file without one), then `blocks()`, once."""

    def __init__(self, path: pathlib.Path, dialect: Dialect, *, label: str, chunk_bytes: int = CHUNK_BYTES,
                 exact: bool = False) -> None:
        self.dialect = dialect
        self._fast = dialect.fast and not exact  # exact=True: the reference reader alone (tests compare both)
        self.label = label
        self.source = Utf8Source(path, dialect.encoding, chunk_bytes)
        self._chunks = self.source.chunks()
        self._chunk_bytes = chunk_bytes
        self._buffer = b""
        self._line = 1  # the physical line the buffer starts on
        self._eof = False
        self._exact: ExactRows | None = None
        self.exact_from: int | None = None  # the line from which the exact reader reads (None: never)
        self.header: list[str] | None = None
        self.header_line = 0
        self._read_header()

    # -- header -----------------------------------------------------------------------
    def _read_header(self) -> None:
        if self._fast:
            while (found := self._scan()) is not None:
                if not len(found.row_lines):
                    self._advance(found.cut, found.lines)
                    continue
                if self._header_from(found):
                    return
                break
        for row in self._switch_to_exact():
            if isinstance(row, BadRow):
                raise CsvInputError(f"{self.label} line {row.lineno}: header: {row.reason}")
            self.header, self.header_line = [value or "" for value in row.values], row.lineno
            return

    def _header_from(self, found: Scan) -> bool:
        """Parse the first record of the buffer exactly; False when it is not one clean row.

        Python's parse of these bytes is the authority: one clean row ending where the scan
        cut means the next record starts there, whatever the quote parity said.
        """
        stop = int(found.row_stops[0])
        rows = list(ExactRows(self._buffer[:stop], iter(()), self._line, self.dialect))
        if len(rows) != 1 or isinstance(rows[0], BadRow):
            return False
        self.header, self.header_line = [value or "" for value in rows[0].values], rows[0].lineno
        self._advance(stop, _count_line_ends(self._buffer[:stop]))
        return True

    # -- rows ---------------------------------------------------------------------------
    def blocks(self) -> t.Iterator[Block]:
        """Every row after the header, in blocks; bad rows (exact reader only) listed per block."""
        width = len(self.header or ())
        if self._exact is None:
            while (found := self._scan()) is not None:
                block = self._parse(found, width) if found.strict else None
                if block is None:
                    self._switch_to_exact()
                    break
                self._advance(found.cut, found.lines)
                yield block
        if self._exact is not None:
            yield from _exact_blocks(self._exact, width, self._chunk_bytes)

    def _switch_to_exact(self) -> ExactRows:
        self.exact_from = self._line
        self._exact = ExactRows(self._buffer, self._chunks, self._line, self.dialect)
        return self._exact

    def _scan(self) -> Scan | None:
        """A scan of the buffer holding at least one whole record; None at the end of the file."""
        while len(self._buffer) < self._chunk_bytes and not self._eof:
            self._fill()
        while True:
            if not self._buffer and self._eof:
                return None
            found = scan(self._buffer, ord(self.dialect.delimiter), ord(self.dialect.quotechar), final=self._eof)
            if found is not None:
                return found
            self._fill()

    def _fill(self) -> None:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._eof = True
        else:
            self._buffer += chunk

    def _advance(self, cut: int, lines: int) -> None:
        self._buffer = self._buffer[cut:]
        self._line += lines

    def _parse(self, found: Scan, width: int) -> Block | None:
        """The buffer's records as string columns, or None when pyarrow refuses them."""
        lines = found.row_lines + self._line
        if not len(lines):
            return Block([pa.array([], pa.string()) for _ in range(width)], lines, [])
        names = [f"c{index}" for index in range(width)]
        data = memoryview(self._buffer)[:found.cut]
        newline = self._eof and self._buffer[-1:] not in (b"\n", b"\r")
        try:
            table = pa_csv.read_csv(
                pa.BufferReader(_arrow_owned(data, newline)),
                read_options=pa_csv.ReadOptions(column_names=names),
                parse_options=pa_csv.ParseOptions(
                    delimiter=self.dialect.delimiter, quote_char=self.dialect.quotechar, double_quote=True,
                    escape_char=False, newlines_in_values=True, ignore_empty_lines=True),
                convert_options=pa_csv.ConvertOptions(
                    check_utf8=True, column_types=dict.fromkeys(names, pa.string()), null_values=[""],
                    strings_can_be_null=True, quoted_strings_can_be_null=False),
            )
        except pa.ArrowInvalid:
            return None  # a wrong field count or bytes that are not UTF-8: the exact reader names the row
        if table.num_rows != len(lines):
            return None
        columns = [table.column(index).combine_chunks() for index in range(width)]
        return _without_empty_rows(Block(columns, lines, []))


def _arrow_owned(data: memoryview, newline: bool) -> pa.Buffer:
    """A copy of the bytes in Arrow's own memory, with a final line end when `newline`.

    pyarrow's parser threads may drop the last reference to their input after read_csv has
    returned; a buffer owned by Python then needs the GIL in a worker thread, which aborts
    the process ("terminate called without an active exception") if the interpreter is
    exiting. The line end: pyarrow reads an empty last field after a quoted one (`"a",` at
    the very end of the file) as "" instead of null unless the record has one.
    """
    copy = pa.allocate_buffer(len(data) + newline)
    target = memoryview(copy).cast("B")
    target[:len(data)] = data
    if newline:
        target[len(data)] = 10
    return copy


def _without_empty_rows(block: Block) -> Block:
    """Rows of only delimiters (`,,,`: Excel's trailing rows) are passed over, like blank lines."""
    if not block.num_rows or not block.columns:
        return block
    empty = np.ones(block.num_rows, dtype=bool)
    for column in block.columns:
        if column.null_count == 0:
            return block
        empty &= column.is_null().to_numpy(zero_copy_only=False)
    if not empty.any():
        return block
    kept = block.keep(~empty)
    kept.empty_rows = int(empty.sum())
    return kept


def _count_line_ends(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


# -- the exact reader ------------------------------------------------------------------------

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


def _exact_blocks(rows: ExactRows, width: int, chunk_bytes: int) -> t.Iterator[Block]:
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
