"""The benchmark's CSV: 9 columns, mixed flag spellings, quotes and commas in text."""

from __future__ import annotations

import csv
import datetime as dt
import random
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pathlib

HEADER = ["id", "first_name", "last_name", "email", "activeflag", "created_at", "score", "city", "comment"]
FLAGS = ("Y", "N", "yes", "no", "true", "False", "t", "f")
CITIES = ("Oslo", "Lima", "Pune", "Kyiv", "Bonn", "Nice", "Faro")
TYPED_TABLE = """create table {table} (
    id bigint primary key, first_name text, last_name text, email text, activeflag boolean,
    created_at timestamp, score double precision, city text, comment text)"""


def write_csv(path: pathlib.Path, rows: int, seed: int = 1) -> pathlib.Path:
    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1)  # noqa: DTZ001 - the CSV's times are naive on purpose
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row_id in range(1, rows + 1):
            writer.writerow([
                row_id, f"First{row_id % 997}", f"Last{row_id % 991}", f"user{row_id}@example.com",
                FLAGS[row_id % len(FLAGS)], (start + dt.timedelta(seconds=row_id * 7)).isoformat(),
                round(rng.random() * 1000, 3), CITIES[row_id % len(CITIES)],
                f'said "hello, world" #{row_id}' if row_id % 3 else "plain, with comma",
            ])
    return path


def write_large_csv(path: pathlib.Path, rows: int, base: pathlib.Path, *,
                    late: tuple[str, str, range] | None = None) -> pathlib.Path:
    """`rows` rows fast: the rows of `base` (a `write_csv` file) repeated, each copy with new ids
    (copy k of a 1,000,000-row base holds ids k*1,000,000+1 ...), written a copy at a time by
    Arrow: 3 s for 10 million rows, where `write_csv` takes a minute. `late`: (column, value,
    ids) writes `value` in that column of the rows with those ids (a column that changes type
    in the last rows: `score` and `activeflag` are written without quotes or commas)."""
    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.frombuffer(base.read_bytes(), dtype=np.uint8)
    ends = np.flatnonzero(data == 10)  # the base file holds no quoted newline
    starts = np.concatenate(([0], ends[:-1] + 1))
    header_end = int(ends[0]) + 1
    starts, ends = starts[1:], ends[1:]
    commas = np.flatnonzero(data == ord(","))
    after_id = commas[np.searchsorted(commas, starts)]  # the first comma of each row: the id is before it
    # Each row without its id: from the first comma through the line end, as one Arrow string array.
    lengths = ends + 1 - after_id
    rests = _gather(data, after_id, lengths)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    tails = pa.LargeStringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(rests))
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        handle.write(data[:header_end].tobytes())
        for first in range(0, rows, len(tails)):
            count = min(len(tails), rows - first)
            ids = pc.cast(pa.array(np.arange(first + 1, first + count + 1, dtype=np.int64)), pa.large_string())
            lines = pc.binary_join_element_wise(ids, _with_late(tails.slice(0, count), first, late),
                                                pa.scalar("", pa.large_string()))
            buffers = lines.buffers()
            line_offsets = np.frombuffer(buffers[1], dtype=np.int64, count=count + 1)
            handle.write(memoryview(buffers[2])[line_offsets[0]:line_offsets[-1]])
    partial.rename(path)  # complete or absent: a file cut short is never reused
    return path


def _with_late(tails: pa.Array, first: int, late: tuple[str, str, range] | None) -> pa.Array:
    """The rows' tails (all but the id) with `late`'s value in its column, for the ids in its range."""
    if late is None:
        return tails
    column, value, ids = late
    start, stop = max(ids.start - 1 - first, 0), min(ids.stop - 1 - first, len(tails))
    if start >= stop:
        return tails
    fields_before = HEADER.index(column) - 1  # after the id
    changed = pc.replace_substring_regex(tails.slice(start, stop - start), f"^((?:,[^,]*){{{fields_before}}},)[^,]*",
                                         r"\1" + value)
    return pa.concat_arrays([tails.slice(0, start), changed, tails.slice(stop)])


def _gather(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """data[starts[i]:starts[i]+lengths[i]] for every i, concatenated, without a Python loop."""
    positions = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    positions += np.arange(int(lengths.sum()), dtype=np.int64)
    return data[positions]
