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

import queue
import threading
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.exact import ExactRows, Row, exact_blocks
from tap_wiserock_csv.rows import BadRow, Block, Dialect
from tap_wiserock_csv.scan import Scan, scan
from tap_wiserock_csv.source import Utf8Source

if t.TYPE_CHECKING:
    import pathlib

CHUNK_BYTES = 4 << 20  # measured: 8 MB is 5 % faster and costs 35 MB more peak memory
READ_AHEAD_BLOCKS = 1  # each waiting block holds about 3x CHUNK_BYTES of memory


class CsvReader:
    """Reads one file: `header` first (None for a file without one), then `blocks()`, once.

    With `dialect.header` false, `header` holds the first row's fields (their count fixes the
    columns) and `blocks()` yields that row too, as data.
    """

    def __init__(self, path: pathlib.Path, dialect: Dialect, *, label: str, chunk_bytes: int = CHUNK_BYTES,
                 exact: bool = False) -> None:
        self.dialect = dialect
        self._fast = dialect.fast and not exact  # exact=True: the reference reader alone (tests compare both)
        self.label = label
        self.source = Utf8Source(path, dialect.encoding, chunk_bytes, skip_lines=dialect.skip_lines)
        self._chunks = self.source.chunks()
        self._chunk_bytes = chunk_bytes
        self._buffer = b""
        self._line = 1 + dialect.skip_lines  # the physical line the buffer starts on
        self._eof = False
        self._exact: ExactRows | None = None
        self.exact_from: int | None = None  # the line from which the exact reader reads (None: never)
        self.header: list[str] | None = None
        self.header_line = 0
        self._first_row: Row | None = None  # with dialect.header false: the first data row, read already
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
                what = "header" if self.dialect.header else "first row (it fixes the columns)"
                raise CsvInputError(f"{self.label} line {row.lineno}: {what}: {row.reason}")
            self._take_header(row)
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
        self._take_header(rows[0])
        self._advance(stop, _count_line_ends(self._buffer[:stop]))
        return True

    def _take_header(self, row: Row) -> None:
        self.header, self.header_line = [value or "" for value in row.values], row.lineno
        if not self.dialect.header:
            self._first_row = row

    # -- rows ---------------------------------------------------------------------------
    def blocks(self) -> t.Iterator[Block]:
        """Every row after the header (every row without one), in blocks; bad rows (exact reader only) listed per block."""
        width = len(self.header or ())
        if self._first_row is not None:
            row, self._first_row = self._first_row, None
            yield _without_empty_rows(Block([pa.array([value], pa.string()) for value in row.values],
                                            np.array([row.lineno], dtype=np.int64), []))
        if self._exact is None:
            while (found := self._scan()) is not None:
                block = self._parse(found, width) if found.strict else None
                if block is None:
                    self._switch_to_exact()
                    break
                self._advance(found.cut, found.lines)
                yield block
        if self._exact is not None:
            yield from exact_blocks(self._exact, width, self._chunk_bytes)

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
        return parse_records(self._buffer, found, self.dialect, width, first_line=self._line, eof=self._eof)


def parse_records(buffer: bytes, found: Scan, dialect: Dialect, width: int, *, first_line: int,
                  eof: bool) -> Block | None:
    """The records `found` in `buffer` as string columns (pyarrow's parser), or None when pyarrow
    refuses them or counts them otherwise than the scan; `first_line` is the buffer's first line."""
    lines = found.row_lines + first_line
    if not len(lines):
        return Block([pa.array([], pa.string()) for _ in range(width)], lines, [])
    names = [f"c{index}" for index in range(width)]
    data = memoryview(buffer)[:found.cut]
    newline = eof and buffer[-1:] not in (b"\n", b"\r")
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(_arrow_owned(data, newline)),
            # One thread: measured at 10M rows, as fast (the first pass reads ahead in its own
            # thread; in the sync the loader and the server want the other core), 10 % less CPU
            # and 30 MB less memory; and no thread pool (whose chunk tasks failed once in a
            # few thousand blocks under load: "a chunk failed converting for an unknown reason").
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pa_csv.ParseOptions(
                delimiter=dialect.delimiter, quote_char=dialect.quotechar, double_quote=True,
                escape_char=False, newlines_in_values=True, ignore_empty_lines=True),
            # ASCII is valid UTF-8: pyarrow's own check (12 % of its time) only for other bytes.
            convert_options=pa_csv.ConvertOptions(
                check_utf8=not buffer.isascii(), column_types=dict.fromkeys(names, pa.string()),
                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid:
        return None  # a wrong field count or bytes that are not UTF-8: the exact reader names the row
    if table.num_rows != len(lines):
        return None
    columns = [table.column(index).combine_chunks() for index in range(width)]
    return _without_empty_rows(Block(columns, lines, []))


def parse_span(buffer: bytes, dialect: Dialect, width: int, *, final: bool) -> Block | None:
    """The whole records of bytes read from within a file, the first one starting at byte 0, when
    the fast reader can vouch for every one of them (plain quoting, `width` fields each); else
    None. A span that starts inside a quoted field breaks the quoting or the field counts.
    `final`: the span runs to the end of the file. Line numbers count from the span's start."""
    if not dialect.fast:
        return None
    found = scan(buffer, ord(dialect.delimiter), ord(dialect.quotechar), final=final)
    if found is None or not found.strict:
        return None
    return parse_records(buffer, found, dialect, width, first_line=1, eof=final)


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


def read_ahead(blocks: t.Iterator[Block], depth: int = READ_AHEAD_BLOCKS) -> t.Iterator[Block]:
    """`blocks` read by a thread while the caller works on the ones before: reading, the quote
    scan and pyarrow's parser mostly run without the GIL, so the pass uses two cores. At most
    `depth` blocks wait (flat memory); the reader's errors are raised here, in order."""
    waiting: queue.Queue[Block | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: Block | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for block in blocks:
                if not hand_over(block):
                    return
            hand_over(None)
        except BaseException as exc:  # raised again in the consumer
            hand_over(exc)

    thread = threading.Thread(target=produce, name="csv-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := waiting.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
