"""Singer messages from stdin as bytes, decoded by msgspec, NUL characters removed and counted."""

from __future__ import annotations

import collections
import decimal
import itertools
import sys
import typing as t

import msgspec
from singer_sdk.singerlib.encoding.base import GenericSingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_wiserock_postgres.errors import shorten

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

# Floats as Decimal: exact numbers into numeric. msgspec keeps integers of any size.
decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
NUL = "\x00"


def remove_nul(value: t.Any) -> tuple[t.Any, int]:
    """`value` with NUL characters removed from every string in it, and how many were removed."""
    if isinstance(value, str):
        count = value.count(NUL)
        return (value.replace(NUL, ""), count) if count else (value, 0)
    if isinstance(value, dict):
        total = 0
        for key, item in value.items():
            value[key], count = remove_nul(item)
            total += count
        return value, total
    if isinstance(value, list):
        total = 0
        for index, item in enumerate(value):
            value[index], count = remove_nul(item)
            total += count
        return value, total
    return value, 0


class MessageReader(GenericSingerReader[bytes]):
    """The SDK's reader loop without per-line overhead, for a million lines a run.

    Reads bytes (no text decoding before msgspec), looks for an escaped NUL in the raw line
    (a cheap bytes search) and only then walks the message to remove it; PostgreSQL text and
    jsonb cannot hold NUL. `nul_removed` counts the removed characters per stream.
    """

    def __init__(self) -> None:
        super().__init__()
        self.nul_removed: collections.Counter[str] = collections.Counter()
        self.line_number = 0

    @property
    @override
    def default_input(self) -> t.IO[bytes]:
        return sys.stdin.buffer

    @override
    def deserialize_json(self, line: bytes | str) -> dict:  # type: ignore[override]
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise InvalidInputLine(f"input line {self.line_number:,} is not valid JSON ({exc}): "
                                   f"{shorten(line)}") from None
        if not isinstance(message, dict):
            raise InvalidInputLine(f"input line {self.line_number:,} is not a Singer message: {shorten(line)}")
        return message

    @override
    def process_lines(self, file_input: t.IO[bytes] | t.IO[str] | None,  # type: ignore[override]
                      callbacks: dict[str, t.Callable[[dict], None]]) -> collections.Counter[str]:
        stats: collections.Counter[str] = collections.Counter()
        lines = iter(file_input or self.default_input)
        first = next(lines, None)
        if first is None:
            return stats
        marker: str | bytes = "\\u0000" if isinstance(first, str) else b"\\u0000"
        deserialize = self.deserialize_json
        for self.line_number, line in enumerate(itertools.chain((first,), lines), 1):
            if not line.strip():
                continue
            message = deserialize(line)
            if marker in line:
                message, count = remove_nul(message)
                if count:
                    self.nul_removed[message.get("stream", "")] += count
            kind = message.get("type")
            callback = callbacks.get(kind)  # type: ignore[arg-type]
            if callback is None:
                raise InvalidInputLine(f"input line {self.line_number:,}: unknown message type {shorten(kind)!r}")
            callback(message)
            stats[kind] += 1  # type: ignore[index]
        return stats
