"""Where a buffer of CSV bytes holds complete records, whether its quoting is strict, and lines.

pyarrow's CSV parser is lenient where Python's `csv` (strict) is not: `"abc"def` becomes
`abcdef`, a quote left open runs to the end of the file. This scan, vectorized with numpy,
tells the fast reader when a buffer is not plainly valid, so that the exact reader takes
over; the fast reader then never accepts a row the exact one would refuse. It also gives
the physical line each record starts on (quoted newlines count), which pyarrow does not.

Quoting rules checked (those of `csv.reader(strict=True)`, doublequote, no escape char):
a quote outside a quoted field must open a field (start of the field); a closing quote
must be followed by a delimiter, a line end or the end of the file; at the end of the file
no quoted field is left open. A quote inside an unquoted field (`ab"c`) is legal for Python
but breaks the quote-parity arithmetic, so it also sends the buffer to the exact reader.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

LF, CR = 10, 13


@dataclasses.dataclass
class Scan:
    cut: int  # bytes of the buffer that hold whole records
    strict: bool  # the quoting up to `cut` is plainly valid
    row_lines: np.ndarray  # for each non-blank record: its first line, counted from the buffer's first line (0)
    row_stops: np.ndarray  # for each non-blank record: where the next record starts (after its line end)
    lines: int  # line ends up to `cut`


def scan(buffer: bytes, delimiter: int, quote: int, *, final: bool) -> Scan | None:
    """None when the buffer holds no whole record yet (read more); `final` at the end of the file."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    size = len(data)
    ends, content_ends = _line_ends(buffer, data, final=final)
    quotes = np.flatnonzero(data == quote)
    quotes_before = np.searchsorted(quotes, ends)
    record_ends = np.flatnonzero((quotes_before & 1) == 0)  # line ends outside quoted fields
    if final:
        cut = size
    elif len(record_ends):
        cut = int(ends[record_ends[-1]]) + 1
    else:
        return None
    # Record k runs from the end of record k-1 to its own line end (the last one may have none).
    starts = np.concatenate(([0], ends[record_ends] + 1))
    stops = np.concatenate((content_ends[record_ends], [size]))
    first_lines = np.concatenate(([0], record_ends + 1))
    next_starts = np.concatenate((ends[record_ends] + 1, [size]))
    if not final or starts[-1] >= size:  # nothing after the last line end
        starts, stops, first_lines, next_starts = starts[:-1], stops[:-1], first_lines[:-1], next_starts[:-1]
    strict = _strict_quoting(data, quotes[:np.searchsorted(quotes, cut)], delimiter, cut)
    if final and len(quotes) % 2:
        strict = False  # a quoted field open at the end of the file
    lines = int(record_ends[-1]) + 1 if len(record_ends) else 0
    records = stops > starts  # blank lines hold no record
    return Scan(cut, strict, first_lines[records], next_starts[records], lines)


def _line_ends(buffer: bytes, data: np.ndarray, *, final: bool) -> tuple[np.ndarray, np.ndarray]:
    """Last byte of each line end (LF, CRLF or a lone CR), and where the line's content stops."""
    lf = np.flatnonzero(data == LF)
    if b"\r" not in buffer:
        return lf, lf
    # CRLF throughout (no lone CR to place): as many CRs as LFs, one before each LF.
    if np.count_nonzero(data == CR) == len(lf) and len(lf) and lf[0] > 0 and (data[lf - 1] == CR).all():
        return lf, lf - 1
    cr = np.flatnonzero(data == CR)
    size = len(data)
    following = cr + 1
    inside = following < size
    before_lf = np.zeros(len(cr), dtype=bool)
    before_lf[inside] = data[following[inside]] == LF
    # A CR that ends a buffer may be the first half of a CRLF: decided with the next buffer.
    lone = cr[~before_lf & (inside | final)]
    ends = np.sort(np.concatenate((lf, lone))) if len(lone) else lf  # disjoint positions
    content_ends = ends.copy()
    crlf = np.zeros(len(ends), dtype=bool)
    crlf[ends > 0] = data[ends[ends > 0] - 1] == CR
    crlf &= data[ends] == LF
    content_ends[crlf] -= 1
    return ends, content_ends


@functools.cache
def _separators(delimiter: int) -> np.ndarray:
    """Bytes a quoted field may follow or be followed by, as a lookup table."""
    table = np.zeros(256, dtype=bool)
    table[[delimiter, LF, CR]] = True
    return table


def _strict_quoting(data: np.ndarray, quotes: np.ndarray, delimiter: int, cut: int) -> bool:
    if not len(quotes):
        return True
    breaks = np.flatnonzero(np.diff(quotes) != 1) + 1
    run_first = np.concatenate(([0], breaks))  # index of each run's first quote
    next_first = np.concatenate((breaks, [len(quotes)]))
    run_start = quotes[run_first]
    run_end = run_start + (next_first - run_first)
    separators = _separators(delimiter)
    field_start = separators[data[run_start - 1]]
    if run_start[0] == 0:
        field_start[0] = True
    closes_well = separators[data[np.minimum(run_end, len(data) - 1)]]
    closes_well[np.searchsorted(run_end, cut):] = True  # decided with the bytes after the cut
    outside = (run_first & 1) == 0  # an even number of quotes before the run
    # Outside: the run opens a field, its other quotes pair up, an even run also closes it.
    # Inside: quotes pair up, an odd run closes the field. A run that closes its field (an
    # even number of quotes up to its end) must be followed by a delimiter or a line end.
    closes_field = (next_first & 1) == 0
    return not ((outside & ~field_start).any() or (closes_field & ~closes_well).any())
