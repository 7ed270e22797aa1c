"""A CSV file's content as UTF-8 bytes: BOM dropped, NULs removed, other encodings transcoded,
title lines (`skip_lines`) left out.

Both readers (the fast column-wise one and the exact row-wise one) parse these bytes, so
that they see the same text. A byte the encoding cannot decode is carried through as the
lone surrogate U+DC00+byte (invalid UTF-8), which the exact reader reports as a bad row
naming the byte.
"""

from __future__ import annotations

import codecs
import dataclasses
import re
import typing as t

if t.TYPE_CHECKING:
    import pathlib

ESCAPE = "tap_wiserock_csv.escape"
UNDECODABLE_LOW, UNDECODABLE_HIGH = 0xDC00, 0xDCFF
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _escape(error: UnicodeError) -> tuple[str, int]:
    """Undecodable bytes become U+DC00+byte; a surrogate already carried through UTF-8 decodes back.

    `surrogateescape` would do the first for bytes >= 0x80 only; a UTF-16 file cut in the
    middle of a character ends in a byte below 0x80 and must not raise either.
    """
    if not isinstance(error, UnicodeDecodeError):
        raise error
    data, start = error.object, error.start
    if (data[start] == 0xED and start + 2 < len(data)
            and 0xB0 <= data[start + 1] <= 0xB3 and 0x80 <= data[start + 2] <= 0xBF):
        return bytes(data[start:start + 3]).decode("utf-8", "surrogatepass"), start + 3
    return "".join(chr(UNDECODABLE_LOW + byte) for byte in data[start:error.end]), error.end


def register_escape() -> None:
    """Register the error handler once; codecs keeps it for the process."""
    try:
        codecs.lookup_error(ESCAPE)
    except LookupError:
        codecs.register_error(ESCAPE, _escape)


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"}


def spans_lines(encoding: str) -> bool:
    """Whether a line end can be found from any byte of the file: UTF-8 (no byte of a multi-byte
    character is a line end) and single-byte encodings (latin-1, cp1252, ...); not UTF-16 or
    other multi-byte encodings, whose bytes at an arbitrary offset may be half a character."""
    if is_utf8(encoding):
        return True
    try:
        every_byte = bytes(range(256)).decode(encoding, errors="replace")
    except LookupError:
        return False
    return len(every_byte) == 256 and "\n\r".encode(encoding, errors="replace") == b"\n\r"


def read_span(path: pathlib.Path, encoding: str, offset: int, size: int) -> bytes:
    """About `size` bytes of the file from its first line start after `offset`, as UTF-8 with NULs
    removed (as `Utf8Source` gives them); empty when no line starts there. For a sample: where
    the span starts inside a quoted field, the reader refuses it (`reader.parse_span`)."""
    with path.open("rb") as handle:
        handle.seek(max(offset - 1, 0))  # from the byte before: a line end there starts a line at `offset`
        raw = handle.read(size + (offset > 0))
    if offset > 0:
        end = _LINE_END.search(raw)
        raw = raw[end.end():] if end is not None else b""
    if not is_utf8(encoding):
        register_escape()
        raw = raw.decode(encoding, errors=ESCAPE).encode("utf-8", "surrogatepass")
    return raw.replace(b"\x00", b"") if b"\x00" in raw else raw


@dataclasses.dataclass
class SkippedLines:
    """Drops the first `wanted` physical lines of a stream of chunks (LF, CRLF or a lone CR ends one).

    Physical lines, not records: a title line is not CSV the tap must understand (an odd
    quote in it must not swallow the header), and line numbers stay the file's own.
    """

    wanted: int
    count: int = 0
    _after_cr: bool = False  # the previous chunk ended with the CR of a skipped line: a LF next belongs to it
    _in_line: bool = False  # part of a line whose end has not come yet

    def rest(self, data: bytes) -> bytes:
        """What follows the skipped lines in `data`: empty while they go on."""
        position = 1 if self._after_cr and data[:1] == b"\n" else 0
        self._after_cr = False
        while self.count < self.wanted:
            end = _LINE_END.search(data, position)
            if end is None:
                self._in_line = self._in_line or position < len(data)
                return b""
            self.count += 1
            self._in_line = False
            position = end.end()
            self._after_cr = end[0] == b"\r" and position == len(data)
        return data[position:] if position else data

    def finish(self) -> None:
        """At the end of the file: a last line without a line end is a line too."""
        if self._in_line and self.count < self.wanted:
            self.count += 1


@dataclasses.dataclass
class Utf8Source:
    """Iterates over the file as UTF-8 chunks of about `chunk_bytes`; counts the NULs it removed.

    The first `skip_lines` physical lines are left out; `lines_skipped` says how many there were
    (fewer when the file ends first).
    """

    path: pathlib.Path
    encoding: str
    chunk_bytes: int
    skip_lines: int = 0
    nuls_removed: int = 0
    lines_skipped: int = 0
    bytes_read: int = 0  # of the file, so far


    def chunks(self) -> t.Iterator[bytes]:
        register_escape()
        skipped = SkippedLines(self.skip_lines) if self.skip_lines else None
        utf8 = is_utf8(self.encoding)
        decoder = None if utf8 else codecs.getincrementaldecoder(self.encoding)(errors=ESCAPE)
        at_start = text_at_start = True
        with self.path.open("rb") as handle:
            while True:
                raw = handle.read(max(self.chunk_bytes, len(codecs.BOM_UTF8)) if at_start else self.chunk_bytes)
                final = not raw
                self.bytes_read += len(raw)
                if at_start and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                at_start = False
                if decoder is not None:
                    text = decoder.decode(raw, final=final)
                    if text_at_start and text:
                        text = text.removeprefix("\ufeff")
                        text_at_start = False
                    raw = text.encode("utf-8", "surrogatepass")
                if b"\x00" in raw:
                    self.nuls_removed += raw.count(b"\x00")
                    raw = raw.replace(b"\x00", b"")
                if raw and skipped is not None:
                    raw = skipped.rest(raw)
                if raw:
                    yield raw
                if final:
                    if skipped is not None:
                        skipped.finish()
                        self.lines_skipped = skipped.count
                    return
