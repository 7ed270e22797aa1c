"""BATCH mode (`batch_config`): the rows of RECORD mode in parquet or JSON Lines files, closed by
rows or bytes, ACTIVATE_VERSION after the last file, nothing left behind by a failed run."""

from __future__ import annotations

import pytest

from tests.conftest import batch_config, batch_files, read_batch_file, run_tap, tap_config

ENCODINGS = [("parquet", "none"), ("parquet", "gzip"), ("jsonl", "none"), ("jsonl", "gzip")]
# Timestamps in forms other than PostgREST's own, which the tap must read the same in every mode.
ODD_TIMESTAMPS = ["2024-03-01 12:00:00Z", "2024-03-01T12:00:00.5-03:00", "2024-03-01T12:00:00",
                  " 2024-02-29T23:59:59.1234567+05:30 ", None]


@pytest.mark.parametrize(("file_format", "compression"), ENCODINGS)
def test_batch_files_hold_the_records_of_record_mode_value_for_value(start_sandbox, tmp_path, file_format, compression):
    server = start_sandbox(users=300, notes=1200)  # NULs, notes over 100 KB, every flag spelling, offsets
    rows = server.sandbox.rows("note")
    for index, stamp in enumerate(ODD_TIMESTAMPS):
        rows[100 * index]["created_at"] = stamp
    server.sandbox.replace_rows("note", rows)
    records = run_tap(tmp_path, tap_config(server, page_size=100))
    assert records.returncode == 0, records.stderr
    batched = run_tap(tmp_path, tap_config(server, page_size=100,
                                           batch_config=batch_config(tmp_path / "batches", file_format, compression, 500)))
    assert batched.returncode == 0, batched.stderr
    assert batched.records("user") == [] and batched.records("note") == []
    for stream in ("user", "note"):
        loaded = [row for path in batch_files(batched, stream) for row in read_batch_file(path, file_format, compression)]
        expected = records.records(stream)
        assert len(loaded) == len(expected) > 0
        assert loaded == expected  # the same values (timestamps as the same text) as the RECORD messages


@pytest.mark.parametrize("file_format", ["parquet", "jsonl"])
def test_activate_version_follows_the_last_batch_of_each_stream(start_sandbox, tmp_path, file_format):
    server = start_sandbox(users=130, notes=170)  # neither a multiple of batch_size: the last files are partial
    run = run_tap(tmp_path, tap_config(server, page_size=40, emit_activate_version_messages=True,
                                       batch_config=batch_config(tmp_path / "b", file_format, batch_size=50)))
    assert run.returncode == 0, run.stderr
    for stream, rows in (("user", 130), ("note", 170)):
        kinds = [(i, m["type"]) for i, m in enumerate(run.messages) if m.get("stream") == stream]
        activations = [i for i, kind in kinds if kind == "ACTIVATE_VERSION"]
        batches = [i for i, kind in kinds if kind == "BATCH"]
        assert len(activations) == 1 and len(batches) == -(-rows // 50)
        assert activations[0] > max(batches)


def test_a_file_closes_at_batch_size_rows_or_at_max_bytes(start_sandbox, tmp_path):
    server = start_sandbox(users=10, notes=1000)
    by_rows = run_tap(tmp_path, tap_config(server, page_size=90, batch_config=batch_config(tmp_path / "rows", batch_size=250)))
    counts = [len(read_batch_file(path, "parquet", "none")) for path in batch_files(by_rows, "note")]
    assert counts == [250, 250, 250, 250]  # pages of 90 are split across files

    limit = 200_000
    by_bytes = run_tap(tmp_path, tap_config(server, page_size=50, batch_file_max_bytes=limit,
                                            batch_config=batch_config(tmp_path / "bytes", batch_size=1000)))
    paths = batch_files(by_bytes, "note")
    counts = [len(read_batch_file(path, "parquet", "none")) for path in paths]
    assert sum(counts) == 1000 and len(paths) > 1
    for path, count in zip(paths[:-1], counts[:-1], strict=True):
        assert path.stat().st_size >= limit and count < 1000  # closed by size, not by rows


@pytest.mark.parametrize("file_format", ["parquet", "jsonl"])
def test_a_failed_stream_leaves_no_unannounced_file_and_no_activate_version(start_sandbox, tmp_path, file_format):
    """Files named in BATCH messages belong to the loader, which deletes them; the file still
    open when the API went down was never announced, so the tap deletes it."""
    server = start_sandbox(users=300, notes=1200)
    # Reads 1-7 are the user table (6 pages of 50 and the empty page); notes read 4 pages, then the API is down.
    server.sandbox.faults.on_request[12] = lambda sandbox: setattr(sandbox.faults, "error_every", 1)
    folder = tmp_path / "batches"
    run = run_tap(tmp_path, tap_config(server, page_size=50, max_attempts=2, parallel_requests=1,
                                       emit_activate_version_messages=True,
                                       batch_config=batch_config(folder, file_format, batch_size=150)))
    assert run.returncode != 0
    assert run.last_error_line.startswith("tap-wiserock-api: error:") and "HTTP 503" in run.last_error_line
    assert [m["stream"] for m in run.of_type("ACTIVATE_VERSION")] == ["user"]
    announced = batch_files(run, "user") + batch_files(run, "note")
    assert len(batch_files(run, "note")) == 1  # 150 of the 200 note rows read: a second file was open
    assert sorted(folder.iterdir()) == sorted(announced)


def test_a_batch_root_that_is_not_a_local_folder_fails_in_one_line(start_sandbox, tmp_path):
    server = start_sandbox(users=5, notes=5)
    batch = {"encoding": {"format": "parquet", "compression": "none"}, "storage": {"root": "s3://bucket/x"}}
    run = run_tap(tmp_path, tap_config(server, batch_config=batch))
    assert run.returncode != 0
    assert run.last_error_line == "tap-wiserock-api: error: batch_config storage.root must be a local file:// folder, got 's3://bucket/x'"
    assert "Traceback" not in run.stderr


def test_an_unknown_batch_format_is_refused_with_the_setting_named(start_sandbox, tmp_path):
    server = start_sandbox(users=5, notes=5)
    batch = {"encoding": {"format": "avro", "compression": "none"}, "storage": {"root": tmp_path.as_uri()}}
    run = run_tap(tmp_path, tap_config(server, batch_config=batch))
    assert run.returncode != 0
    assert "'avro' is not one of ['jsonl', 'parquet']" in run.stderr and "Traceback" not in run.stderr
