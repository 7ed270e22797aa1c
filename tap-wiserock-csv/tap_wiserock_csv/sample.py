"""Discovery's sample of a large file: its columns typed from its start, its end and spans between.

A file larger than `sample_bytes` is not read whole before its first row can be sent. Discovery
types it from a quarter of that budget at its start (read as the sync reads it: header,
`skip_lines`, bad rows), a quarter at its end and the other half in `MIDDLE_SPANS` spans spread
evenly between. A span read from within the file starts at a line start, and only the fast
reader parses it, only when it can vouch for every record: a span that starts inside a quoted
field breaks the quoting or the field count and is left out. The plan is `sampled`: the sync
checks every value against these kinds, widens a column that a later value does not fit
(`widen.py`) and checks the keys.
"""

from __future__ import annotations

import typing as t

from tap_wiserock_csv.plan import FileTyping
from tap_wiserock_csv.reader import CHUNK_BYTES, parse_span
from tap_wiserock_csv.source import read_span, spans_lines

if t.TYPE_CHECKING:
    import logging

    from tap_wiserock_csv.plan import FileOptions, FilePlan

MIDDLE_SPANS = 16


def samples(options: FileOptions, sample_bytes: int) -> bool:
    """Whether discovery types this file from a sample rather than from every value."""
    return (sample_bytes > 0 and options.dialect.fast and spans_lines(options.dialect.encoding)
            and options.path.stat().st_size > sample_bytes)


def sample_plan(options: FileOptions, sample_bytes: int, logger: logging.Logger) -> FilePlan | None:
    """The file's plan from a sample of about `sample_bytes` bytes; None for a file without a header."""
    size = options.path.stat().st_size
    head = max(sample_bytes // 4, 1)
    typing = FileTyping.open(options, chunk_bytes=min(head, CHUNK_BYTES))
    if typing is None:
        return None
    reader, check = typing.reader, typing.check
    for block in reader.blocks():
        checked = check.apply(block)
        # A bad row near the start fails discovery as the first pass would; counts and shares are the sync's.
        typing.policy.take(checked.bad_rows)
        typing.add(checked)
        if reader.source.bytes_read >= head:
            break
    start = reader.source.bytes_read
    for offset, length in _spans(size, start, head, max(sample_bytes - 2 * head, 0)):
        block = parse_span(read_span(options.path, options.dialect.encoding, offset, length), options.dialect,
                           len(typing.layout.columns), final=offset + length >= size)
        if block is not None:
            typing.add(check.apply(block))  # rows the check refuses are the sync's to name, with their lines
    return typing.plan(logger, sampled=True, keys_checked=False,
                       unseen=[typing.layout.columns[index] for index, profile in typing.profiles.items()
                               if not profile.seen])


def _spans(size: int, start: int, tail: int, middle: int) -> list[tuple[int, int]]:
    """(offset, length) of the middle spans, evenly spread over start..size-tail, then of the tail."""
    tail_start = max(size - tail, start)
    spans = []
    length = middle // MIDDLE_SPANS
    room = tail_start - start - length
    if length and room > 0:
        spans = [(start + room * (index + 1) // (MIDDLE_SPANS + 1), length) for index in range(MIDDLE_SPANS)]
    if tail_start < size:
        spans.append((tail_start, size - tail_start))
    return spans
