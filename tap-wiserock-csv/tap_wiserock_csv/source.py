"""A CSV file's content as UTF-8 bytes: BOM dropped, NULs removed, other encodings transcoded.

Both readers (the fast column-wise one and the exact row-wise one) parse these bytes, so
that they see the same text. A byte the encoding cannot decode is carried through as the
lone surrogate U+DC00+byte (invalid UTF-8), which the exact reader reports as a bad row
naming the byte.
"""

from __future__ import annotations

import codecs
import dataclasses
import typing as t

if t.TYPE_CHECKING:
    import pathlib

ESCAPE = "tap_wiserock_csv.escape"
UNDECODABLE_LOW, UNDECODABLE_HIGH = 0xDC00, 0xDCFF


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


@dataclasses.dataclass
class Utf8Source:
    """Iterates over the file as UTF-8 chunks of about `chunk_bytes`; counts the NULs it removed."""

    path: pathlib.Path
    encoding: str
    chunk_bytes: int
    nuls_removed: int = 0

    def chunks(self) -> t.Iterator[bytes]:
        register_escape()
        utf8 = is_utf8(self.encoding)
        decoder = None if utf8 else codecs.getincrementaldecoder(self.encoding)(errors=ESCAPE)
        at_start = text_at_start = True
        with self.path.open("rb") as handle:
            while True:
                raw = handle.read(max(self.chunk_bytes, len(codecs.BOM_UTF8)) if at_start else self.chunk_bytes)
                final = not raw
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
                if raw:
                    yield raw
                if final:
                    return
