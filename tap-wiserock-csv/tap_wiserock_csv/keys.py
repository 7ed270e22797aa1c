"""Duplicate keys, found in the first pass in bounded memory: a 64-bit hash of each row's key.

The hashes are held in memory up to `HELD_HASHES`; past that they go to temporary files
(8 bytes per row, in the system's temporary folder), split into 256 partitions by their top
bits, and each partition is then sorted alone. A partition still larger than `HELD_HASHES`
(a file of billions of rows) is split again by the next 8 bits, so memory stays the same at
any row count.

Hashes only point at candidates; a duplicate is reported only after a second look at the
rows holding a candidate hash finds two equal keys (so a hash collision never fails a file),
`CANDIDATES_PER_PASS` candidates per look until one is real or none is left. For integer,
date and text keys equal text means equal value, so the first pass's hashes of the text
suffice; number, date-time and boolean keys can be equal in different spellings (`1.0` and
`1`, one instant in two offsets), so they are hashed again by value.
"""

from __future__ import annotations

import decimal
import pathlib
import tempfile
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tap_wiserock_csv.kinds import TRUE_WORDS, to_arrow

if t.TYPE_CHECKING:
    from tap_wiserock_csv.checks import CheckedBlock

TEXT_EXACT_KINDS = frozenset({"integer", "date", "string"})
HELD_HASHES = 1 << 20  # 8 MB of hashes in memory, then temporary files
PARTITION_BITS = 8
LEVELS = 64 // PARTITION_BITS  # a partition of the last level holds one hash value only
CANDIDATES_PER_PASS = 1 << 12
_SHORT_INTEGER = "^-?(?:0|[1-9][0-9]{0,17})$"  # fits int64 for sure
_SHORT_LIMIT = pa.scalar(10**18, pa.int64())
_MIX = np.uint64(0x100000001B3)
# splitmix64's finalizer: a bijection that spreads integer keys (1, 2, 3 ...) over the top bits.
_SPREAD = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27), np.uint64(0x94D049BB133111EB), np.uint64(31))


def text_hashes(values: pa.Array, integers: pa.Array | None = None) -> np.ndarray:
    """One int64 per value: integers by value (so `-0` equals `0`), other text by Python's hash.

    Integers of up to 18 digits (`_SHORT_INTEGER`) are the ones taken by value, value by value,
    so that equal text always gets the same hash, whatever the rest of its block holds.
    `integers`: the values as int64, when each is written as Arrow writes it back."""
    plain = _plain_short_integers(values, integers)
    if plain is not None:
        return plain
    integers = pc.match_substring_regex(values, _SHORT_INTEGER).to_numpy(zero_copy_only=False)
    if integers.all():
        return pc.cast(values, pa.int64()).to_numpy()
    hashes = np.fromiter((hash(value) for value in values.to_pylist()), dtype=np.int64, count=len(values))
    if integers.any():
        selector = pa.array(integers)
        hashes[integers] = pc.cast(values.filter(selector), pa.int64()).to_numpy()
    return hashes


def _plain_short_integers(values: pa.Array, integers: pa.Array | None = None) -> np.ndarray | None:
    """The values as int64 when each is written as Arrow writes it back, within 18 digits (all
    match `_SHORT_INTEGER`; `-0` does not, and takes the pattern's way): the usual key column
    costs a cast and a comparison instead of a pattern match (`integers`: that cast and
    comparison done already)."""
    if integers is None:
        try:
            integers = pc.cast(values, pa.int64())
        except pa.ArrowInvalid:
            return None
        written = pc.equal(pc.cast(integers, pa.string()), values)
        if not pc.all(written).as_py():
            return None
    return integers.to_numpy() if pc.all(pc.less(pc.abs(integers), _SHORT_LIMIT)).as_py() else None


def _value_hashes(values: pa.Array, kind: str) -> np.ndarray:
    if kind in TEXT_EXACT_KINDS:
        return text_hashes(values)
    if kind in {"date-time", "boolean"}:
        return to_arrow(kind, values).cast(pa.int64()).to_numpy(zero_copy_only=False)
    return np.fromiter((hash(decimal.Decimal(value)) for value in values.to_pylist()), dtype=np.int64,
                       count=len(values))


def _int64(array: pa.Array | None) -> pa.Array | None:
    return array if array is not None and array.type == pa.int64() else None


def key_hashes(parts: list[np.ndarray]) -> np.ndarray:
    """One uint64 per row from the hashes of its key's columns; equal inputs, equal output."""
    combined = parts[0].view(np.uint64).copy()
    for part in parts[1:]:
        combined = combined * _MIX ^ part.view(np.uint64)
    first, multiply, second, multiply_again, third = _SPREAD
    combined ^= combined >> first
    combined *= multiply
    combined ^= combined >> second
    combined *= multiply_again
    combined ^= combined >> third
    return combined


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


def _repeats(hashes: np.ndarray) -> np.ndarray:
    """The values found more than once, sorted (sorts `hashes` in place)."""
    hashes.sort()
    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


class KeyHashes:
    """The hashes of every row's key, in bounded memory; then those seen more than once.

    `level` is how many times the hashes were partitioned already (by 8 bits each time)."""

    def __init__(self, positions: list[int], *, level: int = 0) -> None:
        self.positions = positions
        self._level = level
        self._held: np.ndarray | None = None  # allocated on the first hash: HELD_HASHES of them
        self._held_count = 0
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._runs: list[tuple[pathlib.Path, np.ndarray]] = []  # a file of hashes by partition, and where each starts

    def __enter__(self) -> KeyHashes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._held, self._runs = None, []
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def add(self, block: CheckedBlock, integers: t.Mapping[int, pa.Array] | None = None) -> None:
        """The block's keys; `integers`: key columns (by position) as int64, written as Arrow writes them back."""
        if self.positions and block.num_rows:
            integers = integers or {}
            self.add_hashes(key_hashes([text_hashes(block.columns[position], _int64(integers.get(position)))
                                        for position in self.positions]))

    def add_hashes(self, hashes: np.ndarray) -> None:
        if self._held is None:
            self._held = np.empty(HELD_HASHES, dtype=np.uint64)
        while len(hashes):
            taken = hashes[:HELD_HASHES - self._held_count]
            self._held[self._held_count:self._held_count + len(taken)] = taken
            self._held_count += len(taken)
            hashes = hashes[len(taken):]
            if self._held_count == HELD_HASHES:
                self._write_run(self._held)

    def _write_run(self, hashes: np.ndarray) -> None:
        """The held hashes to a temporary file, grouped by partition."""
        self._held_count = 0
        shift = np.uint64(64 - PARTITION_BITS * (self._level + 1))
        partitions = (hashes >> shift).astype(np.uint8)
        order = np.argsort(partitions, kind="stable")  # a radix sort of bytes
        starts = np.concatenate(([0], np.cumsum(np.bincount(partitions, minlength=1 << PARTITION_BITS))))
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="tap-wiserock-csv-keys-")
        path = pathlib.Path(self._folder.name) / f"run-{len(self._runs)}"
        hashes[order].tofile(path)
        self._runs.append((path, starts))

    def repeated(self) -> t.Iterator[np.ndarray]:
        """Sorted arrays of the hashes seen more than once, a partition at a time."""
        if not self._runs:
            if self._held is not None:
                yield _repeats(self._held[:self._held_count])
            return
        if self._held is not None and self._held_count:
            self._write_run(self._held[:self._held_count])
        self._held = None
        for partition in range(1 << PARTITION_BITS):
            size = sum(int(starts[partition + 1] - starts[partition]) for _, starts in self._runs)
            if size <= HELD_HASHES:
                if size > 1:
                    yield _repeats(np.concatenate(list(self._partition(partition))))
            elif self._level + 1 == LEVELS:  # every hash of this partition is the same value
                yield next(self._partition(partition))[:1]
            else:
                with KeyHashes(self.positions, level=self._level + 1) as finer:
                    for part in self._partition(partition):
                        finer.add_hashes(part)
                    yield from finer.repeated()

    def _partition(self, partition: int) -> t.Iterator[np.ndarray]:
        """The hashes of one partition, a run at a time."""
        for path, starts in self._runs:
            count = int(starts[partition + 1] - starts[partition])
            if count:
                yield np.fromfile(path, dtype=np.uint64, count=count, offset=int(starts[partition]) * 8)


def _in_batches(arrays: t.Iterable[np.ndarray], size: int) -> t.Iterator[np.ndarray]:
    pending: list[np.ndarray] = []
    count = 0
    for array in arrays:
        if len(array):
            pending.append(array)
            count += len(array)
        if count >= size:
            yield np.concatenate(pending)
            pending, count = [], 0
    if pending:
        yield np.concatenate(pending)


def find_duplicate(blocks: t.Callable[[], t.Iterable[CheckedBlock]], positions: list[int], kinds: list[str],
                   first_pass: KeyHashes) -> tuple[list[str], int, int] | None:
    """A key that really repeats: (its values as written, first line, second line), or None.

    `first_pass` holds the first pass's text hashes; keys of kinds that are not text-exact
    are hashed by value in one more pass first.
    """
    by_value = not all(kind in TEXT_EXACT_KINDS for kind in kinds)

    def hashes(block: CheckedBlock) -> np.ndarray:
        if by_value:
            return key_hashes([_value_hashes(block.columns[p], kind) for p, kind in zip(positions, kinds, strict=True)])
        return key_hashes([text_hashes(block.columns[p]) for p in positions])

    if not by_value:
        return _first_real(blocks, hashes, positions, kinds, first_pass.repeated())
    with KeyHashes(positions) as values:
        for block in blocks():
            if block.num_rows:
                values.add_hashes(hashes(block))
        return _first_real(blocks, hashes, positions, kinds, values.repeated())


def _first_real(blocks: t.Callable[[], t.Iterable[CheckedBlock]], hashes: t.Callable[[CheckedBlock], np.ndarray],
                positions: list[int], kinds: list[str], repeated: t.Iterable[np.ndarray],
                ) -> tuple[list[str], int, int] | None:
    """Candidates looked at in batches: the first key of a batch found twice, in file order."""
    for wanted in _in_batches(repeated, CANDIDATES_PER_PASS):
        wanted.sort()
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
