"""Contract 10: the loader reads and deletes only its own batch files, those inside the folders of
`batch_roots` (real paths: `..` and symbolic links resolved). A file elsewhere, or a URL that is
not a local file, fails the run before anything is read or deleted. Without the setting, batch
files are read wherever they are and never deleted."""

from __future__ import annotations

import logging
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import activate, error_line, load, record, run_cli, schema, snapshot

PREVIOUS = snapshot("t", [{"id": 1}], id="integer")


def parquet(path, *ids: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), path)
    return path


def batch(stream: str, *urls: str) -> dict:
    return {"type": "BATCH", "stream": stream, "encoding": {"format": "parquet", "compression": "none"},
            "manifest": list(urls)}


@pytest.fixture
def outside(tmp_path_factory):
    """A folder outside the test's batch root (which is the test's own tmp_path)."""
    return tmp_path_factory.mktemp("elsewhere")


def url_to_outside(warehouse, outside, how: str) -> str:
    """A file:// URL that names a parquet file outside the batch root, written as `how` says."""
    target = parquet(outside / "elsewhere.parquet", 99)
    if how == "direct":
        return target.as_uri()
    if how == "dot-dot":  # a path that starts inside the root and climbs out of it
        return f"file://{warehouse.folder}/../{os.path.relpath(target, warehouse.folder.parent)}"
    link = warehouse.folder / "link.parquet"  # a symbolic link inside the root, to the file outside
    link.symlink_to(target)
    return link.as_uri()


@pytest.mark.parametrize("how", ["direct", "dot-dot", "symlink"])
def test_a_file_outside_the_batch_roots_is_neither_read_nor_deleted(warehouse, outside, how):
    load(warehouse, PREVIOUS)
    url = url_to_outside(warehouse, outside, how)
    own = parquet(warehouse.folder / "own.parquet", 2)  # named in the same message: the loader's, deleted
    before = (outside / "elsewhere.parquet").read_bytes()
    result = run_cli(warehouse, [schema("t", id="integer"), record("t", id=3), batch("t", own.as_uri(), url),
                                 activate("t")])
    line = error_line(result)
    assert f"batch file {url.removeprefix('file://')}" in line
    assert f"is outside the folders of the setting batch_roots ({warehouse.folder}); it was neither read nor deleted" \
        in line
    if how != "direct":
        assert f"(really {outside / 'elsewhere.parquet'})" in line
    assert (outside / "elsewhere.parquet").read_bytes() == before
    assert not own.exists()
    assert warehouse.rows("t") == [(1,)]


def test_a_file_that_is_not_a_batch_file_is_left_alone(warehouse, outside):
    """The issue's case: a manifest naming someone's notes."""
    notes = outside / "notes.txt"
    notes.write_text("not a batch file\n")
    message = {**batch("t", notes.as_uri()), "encoding": {"format": "jsonl", "compression": "none"}}
    result = run_cli(warehouse, [schema("t", id="integer"), message, activate("t")])
    assert f"batch file {notes} is outside the folders of the setting batch_roots" in error_line(result)
    assert "cannot be read" not in result.stderr and "Deleted" not in result.stderr
    assert notes.read_text() == "not a batch file\n"


@pytest.mark.parametrize("url", ["s3://bucket/part.parquet", "https://example.com/part.parquet",
                                 "file://otherhost/tmp/part.parquet", "part.parquet"])
def test_a_url_that_is_not_a_local_file_is_refused(warehouse, url):
    own = parquet(warehouse.folder / "own.parquet", 2)
    result = run_cli(warehouse, [schema("t", id="integer"), batch("t", own.as_uri(), url), activate("t")])
    assert f"stream 't': batch file {url} is not a local file:// URL, the only kind this loader reads (setting " \
           "batch_roots); it was neither read nor deleted" in error_line(result)
    assert not own.exists()
    assert not warehouse.exists("t")


def test_inside_the_roots_dot_dot_and_symlinks_are_resolved(warehouse, tmp_path_factory):
    """A root given through a symbolic link, as a file:// URL; a `..` that stays inside it."""
    real_root = tmp_path_factory.mktemp("real-root")
    linked_root = warehouse.folder / "linked-root"
    linked_root.symlink_to(real_root)
    inside = parquet(real_root / "sub" / "part.parquet", 2, 3)
    url = f"file://{real_root}/sub/../sub/part.parquet"
    load(warehouse, [schema("t", id="integer"), batch("t", url), activate("t")], batch_roots=[linked_root.as_uri()])
    assert warehouse.rows("t") == [(2,), (3,)]
    assert not inside.exists()


def test_several_roots(warehouse, outside):
    first, second = parquet(warehouse.folder / "a.parquet", 1), parquet(outside / "b.parquet", 2)
    load(warehouse, [schema("t", id="integer"), batch("t", first.as_uri(), second.as_uri()), activate("t")],
         batch_roots=[str(warehouse.folder), str(outside)])
    assert warehouse.rows("t") == [(1,), (2,)]
    assert not first.exists() and not second.exists()


def test_without_the_setting_files_are_read_and_kept(warehouse, caplog):
    caplog.set_level(logging.INFO)
    path = parquet(warehouse.folder / "part.parquet", 1, 2)
    load(warehouse, [schema("t", id="integer"), batch("t", path.as_uri()), activate("t")], batch_roots=None)
    assert warehouse.rows("t") == [(1,), (2,)]
    assert path.exists()
    assert "Batch files are read but not deleted: the setting batch_roots is not set" in caplog.text
    failed = run_cli(warehouse, [schema("t", id="integer"), batch("t", path.as_uri())], batch_roots=None)
    assert "did not complete" in error_line(failed)
    assert path.exists()


@pytest.mark.parametrize("root", ["s3://bucket/batches", ""])
def test_a_root_that_is_not_a_local_folder_is_an_invalid_setting(warehouse, root):
    result = run_cli(warehouse, PREVIOUS, batch_roots=[root])
    assert f"invalid settings: batch_roots entry {root!r} is not a local folder (a path or a file:// URL)" \
        in error_line(result)
