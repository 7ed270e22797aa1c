"""The key check in bounded memory: hashes in partitioned temporary files, candidates checked exactly.

The first pass holds at most `keys.HELD_HASHES` hashes in memory; here it is made tiny so
that a few thousand rows go through temporary files and partitions, and the hash is made
weak so that collisions are common: a duplicate must still be found with its two lines, and a
collision must never fail a file.
"""

from __future__ import annotations

import logging
import tempfile
import typing as t

import numpy as np
import pytest

from tap_wiserock_csv import keys
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.plan import FileOptions, plan_file
from tap_wiserock_csv.rows import Dialect

if t.TYPE_CHECKING:
    import pathlib

ROWS = 3000


@pytest.fixture(autouse=True)
def small_memory(monkeypatch, tmp_path):
    """Hashes go to temporary files every 100 rows, into a folder the test can look at."""
    monkeypatch.setattr(keys, "HELD_HASHES", 100)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def weak_hash(monkeypatch, modulus: int) -> None:
    """Hashes with `modulus` values only: most rows collide with many others."""
    text_hashes = keys.text_hashes
    monkeypatch.setattr(keys, "text_hashes", lambda values, *rest: text_hashes(values, *rest) % modulus)


def plan(path: pathlib.Path, key: tuple[str, ...] | None = None) -> list[str]:
    options = FileOptions(path=path, label=str(path), stream="x", dialect=Dialect(), null_values=("NULL",),
                          keys=key, column_types=(), skip_bad_rows=False, max_bad_rows=None)
    found = plan_file(options, logging.getLogger("test"))
    assert found is not None
    return found.kinds


def write(folder: pathlib.Path, header: str, rows: list[str]) -> pathlib.Path:
    path = folder / "x.csv"
    path.write_text(header + "\n" + "".join(row + "\n" for row in rows))
    return path


def shuffled_ids(count: int) -> list[int]:
    return [int(value) for value in np.random.default_rng(7).permutation(np.arange(1, count + 1) * 7919)]


@pytest.mark.parametrize("modulus", [None, 3, 251])
def test_a_duplicate_far_apart_is_found_across_partitions_with_its_two_lines(tmp_path, monkeypatch, small_memory,
                                                                              modulus):
    if modulus:
        weak_hash(monkeypatch, modulus)
    ids = shuffled_ids(ROWS)
    ids[2900] = ids[17]  # lines 19 and 2902 (the header is line 1)
    path = write(tmp_path, "id,name", [f"{value},n{index}" for index, value in enumerate(ids)])
    with pytest.raises(CsvInputError) as error:
        plan(path)
    assert f"the key (id) is not unique: '{ids[17]}' is on lines 19 and 2902" in str(error.value)
    assert list(small_memory.iterdir()) == []  # the temporary files are gone


@pytest.mark.parametrize("modulus", [None, 2, 97])
def test_unique_keys_pass_however_often_their_hashes_collide(tmp_path, monkeypatch, small_memory, modulus):
    if modulus:
        weak_hash(monkeypatch, modulus)
    monkeypatch.setattr(keys, "CANDIDATES_PER_PASS", 8)  # several looks at the file, 8 candidates each
    path = write(tmp_path, "id,code", [f"{value},c{value % 11}" for value in shuffled_ids(ROWS)])
    assert plan(path)[0] == "integer"
    assert list(small_memory.iterdir()) == []


@pytest.mark.parametrize(("header", "rows", "key", "expected"), [
    ("code,v", [f"K-{n:05d},1" for n in range(ROWS)] + ["K-01234,2"], ("code",), "'K-01234' is on lines 1236 and 3002"),
    ("n,v", [f"{n}.5,1" for n in range(ROWS)] + ["17.50,2"], ("n",), "'17.50' is on lines 19 and 3002"),
    ("a,b,v", [f"{n % 50},{n // 50},x" for n in range(ROWS)] + ["7,3,y"], ("a", "b"), "'7', '3' is on lines 159 and 3002"),
])
def test_text_number_and_compound_keys_go_through_the_same_check(tmp_path, monkeypatch, header, rows, key, expected):
    weak_hash(monkeypatch, 5)
    path = write(tmp_path, header, rows)
    with pytest.raises(CsvInputError) as error:
        plan(path, key)
    assert expected in str(error.value)


def test_a_partition_larger_than_memory_is_split_again_by_the_next_bits(small_memory):
    """Hashes that agree on their top 56 bits (small integers before spreading) fill one partition
    at every level; only the last 8 bits tell them apart. Memory still holds 100 at a time."""
    values = np.arange(1000, dtype=np.uint64)
    duplicated = np.array([5, 999, 512], dtype=np.uint64)
    with keys.KeyHashes([0]) as hashes:
        for part in np.array_split(np.concatenate((values, duplicated, duplicated[:1])), 13):
            hashes.add_hashes(part)
        assert any(small_memory.iterdir())
        found = np.concatenate(list(hashes.repeated()))
    assert sorted(found.tolist()) == [5, 512, 999]
    assert list(small_memory.iterdir()) == []
    with keys.KeyHashes([0]) as hashes:
        hashes.add_hashes(np.full(500, 42, dtype=np.uint64))  # one value, more often than memory holds
        assert np.concatenate(list(hashes.repeated())).tolist() == [42]


def test_a_failing_first_pass_leaves_no_temporary_files(tmp_path, small_memory):
    path = write(tmp_path, "id,v", [f"{n},1" for n in range(ROWS)] + ["1,2,3"])
    with pytest.raises(CsvInputError, match="expected 2 fields, found 3"):
        plan(path)
    assert list(small_memory.iterdir()) == []
