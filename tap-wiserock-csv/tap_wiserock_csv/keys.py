"""Duplicate keys, found in the first pass with 8 bytes per row: a 64-bit hash of each row's key.

Hashes only point at candidates; a duplicate is reported only after a second look at the
rows holding a candidate hash finds two equal keys (so a hash collision never fails a file).
For integer, date and text keys equal text means equal value, so the first pass's hashes
of the text suffice; number, date-time and boolean keys can be equal in different spellings
(`1.0` and `1`, one instant in two offsets), so they are hashed again by value.
"""

from __future__ import annotations

import decimal
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tap_wiserock_csv.kinds import TRUE_WORDS, to_arrow

if t.TYPE_CHECKING:
    from tap_wiserock_csv.checks import CheckedBlock

TEXT_EXACT_KINDS = frozenset({"integer", "date", "string"})
_MIX = np.uint64(0x100000001B3)
_SHORT_INTEGER = "^-?(?:0|[1-9][0-9]{0,17})$"  # fits int64 for sure


def text_hashes(values: pa.Array) -> np.ndarray:
    """One int64 per value: integers by value (so `-0` equals `0`), other text by Python's hash."""
    integers = pc.match_substring_regex(values, _SHORT_INTEGER).to_numpy(zero_copy_only=False)
    if integers.all():
        return pc.cast(values, pa.int64()).to_numpy()
    hashes = np.fromiter((hash(value) for value in values.to_pylist()), dtype=np.int64, count=len(values))
    if integers.any():
        selector = pa.array(integers)
        hashes[integers] = pc.cast(values.filter(selector), pa.int64()).to_numpy()
    return hashes


def _value_hashes(values: pa.Array, kind: str) -> np.ndarray:
    if kind in TEXT_EXACT_KINDS:
        return text_hashes(values)
    if kind in {"date-time", "boolean"}:
        return to_arrow(kind, values).cast(pa.int64()).to_numpy(zero_copy_only=False)
    return np.fromiter((hash(decimal.Decimal(value)) for value in values.to_pylist()), dtype=np.int64,
                       count=len(values))


def _mixed(parts: list[np.ndarray]) -> np.ndarray:
    combined = parts[0].view(np.uint64).copy()
    for part in parts[1:]:
        combined = combined * _MIX ^ part.view(np.uint64)
    return combined.view(np.int64)


def _canonical(value: str, kind: str) -> t.Hashable:
    if kind == "integer":
        return int(value)
    if kind == "number":
        return decimal.Decimal(value)
    if kind == "boolean":
        return value.lower() in (*TRUE_WORDS, "1")
    if kind == "date-time":
        return to_arrow(kind, pa.array([value])).cast(pa.int64())[0].as_py()
    return value


class KeyHashes:
    """The first pass's hashes of each row's key."""

    def __init__(self, positions: list[int]) -> None:
        self.positions = positions
        self._parts: list[np.ndarray] = []

    def add(self, block: CheckedBlock) -> None:
        if self.positions and block.num_rows:
            self.add_hashes(_mixed([text_hashes(block.columns[position]) for position in self.positions]))

    def add_hashes(self, hashes: np.ndarray) -> None:
        self._parts.append(hashes)

    def repeated(self) -> set[int]:
        """Hashes seen more than once (a handful at most is looked at)."""
        if not self._parts:
            return set()
        hashes = np.sort(np.concatenate(self._parts))
        self._parts = []
        return {int(value) for value in hashes[1:][hashes[1:] == hashes[:-1]][:16]}


def find_duplicate(blocks: t.Callable[[], t.Iterable[CheckedBlock]], positions: list[int], kinds: list[str],
                   candidates: set[int]) -> tuple[list[str], int, int] | None:
    """A key that really repeats: (its values as written, first line, second line), or None.

    `candidates` are the first pass's text hashes; keys of kinds that are not text-exact
    are hashed by value in one more pass first.
    """
    by_value = not all(kind in TEXT_EXACT_KINDS for kind in kinds)

    def hashes(block: CheckedBlock) -> np.ndarray:
        if by_value:
            return _mixed([_value_hashes(block.columns[p], kind) for p, kind in zip(positions, kinds, strict=True)])
        return _mixed([text_hashes(block.columns[p]) for p in positions])

    if by_value:
        found = KeyHashes(positions)
        for block in blocks():
            if block.num_rows:
                found.add_hashes(hashes(block))
        candidates = found.repeated()
    if not candidates:
        return None
    wanted = np.array(sorted(candidates), dtype=np.int64)
    first_line: dict[tuple[t.Hashable, ...], int] = {}
    for block in blocks():
        if not block.num_rows:
            continue
        for index in np.flatnonzero(np.isin(hashes(block), wanted)):
            texts = [block.columns[p][int(index)].as_py() for p in positions]
            key = tuple(_canonical(text, kind) for text, kind in zip(texts, kinds, strict=True))
            line = int(block.lines[index])
            if key in first_line:
                return texts, first_line[key], line
            first_line[key] = line
    return None
