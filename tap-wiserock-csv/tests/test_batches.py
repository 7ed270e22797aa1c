"""BATCH mode (batch_config): the same rows as RECORD mode, files handed over as they close."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import typing as t

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from singer_sdk.helpers._batch import BatchConfig

from tap_wiserock_csv.batches import BatchFiles
from tap_wiserock_csv.typed import TypedBlock, arrow_schema
from tests.conftest import REPO_DATA, batch_config, batch_rows, record_rows, run_tap, write

if t.TYPE_CHECKING:
    import pathlib

SAMPLE_FILES = [{"path": "Customers.csv"}, {"path": "Orders.csv", "keys": ["order_id"]}, {"path": "Order Items.CSV"}]


def sample(folder: pathlib.Path) -> dict[str, t.Any]:
    for path in REPO_DATA.glob("*"):
        shutil.copy(path, folder / path.name)
    return {"files": SAMPLE_FILES}


def typing_cases(folder: pathlib.Path) -> dict[str, t.Any]:
    write(folder, "kinds.csv",
          'id,ok,is_new,n,amount,day,at,note\n'
          '1,yes,1,5,1.5,2024-03-01,2024-03-01T10:00:00+02:00,plain\n'
          '2,No,0,-7,-2e3,1999-12-31,2024-03-01 23:30:00Z,"two\r\nlines, ""quoted"""\n'
          '3,,,,,,,""\n'
          '4,T,1,0,.5,2024-02-29,2024-03-01T10:00:00.5-0130,NULL\n'
          '5,f,0,12,7,0001-01-01,2024-03-01T10:00,Zoë 売上 \x00nul\n')
    write(folder, "edges.csv",
          "id,big,huge,edge,valid_to,fine\n"
          "1,89014103211118510720,1e400,-9223372036854775808,9999-12-31 23:59:59-05,2024-01-01T00:00:00.123456000Z\n"
          "2,89014103211118510721,-1e-400,9223372036854775807,0001-01-01T00:00:00+01:00,2024-01-01T00:00:00Z\n"
          f"3,{'9' * 5000},0.1,0,2024-06-30T12:00:00-07:00,2024-01-01T00:00:00.000001Z\n")
    write(folder, "forced.csv", "id,zip,total,flag,when,on\n1,02134,5,1,2024-01-01T00:00:00.123456789Z,2024-01-01\n"
                                "2,10001,6.25,0,2024-01-02 03:04,2024-12-31\n")
    write(folder, "markers.csv", "id,v,w\n1,NA,1\n2,2.5,n/a\n3,-,x\n")
    return {"null_values": ["NULL", "NA", "N/A", "-"],
            "files": [{"path": "forced.csv", "column_types": {"zip": "string", "total": "number", "flag": "boolean",
                                                              "when": "date-time", "on": "date"}}]}


def bad_input(folder: pathlib.Path) -> dict[str, t.Any]:
    write(folder, "bad.csv", b'id,name,amount\r\n1,a,5\r\n2,b,6,extra\r\n3,caf\xe9,7\r\n\r\n,,\r\n,d,8\r\n'
                             b'5,"x"y,9\r\n6,"multi\r\nline",10\r\n7,e,oops\r\n8,"never closed,11\r\n')
    write(folder, "ragged.csv", "a,b\n1,2\n3\n4,5\n,,,\n6,7\n")
    return {"on_bad_row": "skip", "add_metadata_columns": True,
            "files": [{"path": "bad.csv", "column_types": {"amount": "integer"}}]}


def vendor_exports(folder: pathlib.Path) -> dict[str, t.Any]:
    """Issue 17: repeated headers, title lines, no header (with a ragged row), as exported."""
    write(folder, "repeated.csv", "ID,Name,id,0,0,id_2\n1,a,10,x,5,z\n2,b,20,y,6,\n")
    write(folder, "titled.csv", 'Sales report "Q3,generated 2026-11-30\r\n"multi\r\nline",x\r\n'
                                "id,amount\r\n1,5.5\r\n2,-1e3\r\n")
    write(folder, "dump.csv", "6.320000000000000097e-03,18,x\n2.7e-02,0,\n1,2\n,7,\"\"\n")
    return {"on_bad_row": "skip", "add_metadata_columns": True,
            "files": [{"path": "repeated.csv", "keys": ["id_3"]}, {"path": "titled.csv", "skip_lines": 3},
                      {"path": "dump.csv", "header": False}]}


CASES = {"sample": sample, "typing": typing_cases, "bad_input": bad_input, "vendor_exports": vendor_exports}
ENCODINGS = [("parquet", "none"), ("parquet", "gzip"), ("jsonl", "none"), ("jsonl", "gzip")]


@pytest.mark.parametrize(("fmt", "compression"), ENCODINGS)
@pytest.mark.parametrize("case", list(CASES))
def test_batch_files_hold_the_same_values_as_record_messages(folder, case, fmt, compression):
    config = CASES[case](folder)
    records = run_tap(folder, **config)
    assert records.returncode == 0, records.stderr
    batches = run_tap(folder, **config, batch_config=batch_config(folder.parent / "batches", fmt, compression,
                                                                   batch_size=2))
    assert batches.returncode == 0, batches.stderr
    assert batches.streams == records.streams
    for stream in records.streams:
        assert batches.schema(stream) == records.schema(stream)
        expected = record_rows(records, stream)
        assert batch_rows(batches, stream) == expected
        assert expected or stream == "header_only"
    assert not [m for m in batches.messages if m["type"] == "RECORD"]


def test_activate_version_comes_after_the_last_batch_of_each_stream(folder):
    write(folder, "a.csv", "id\n" + "".join(f"{i}\n" for i in range(25)))  # 10 + 10 + 5: the last file is partial
    write(folder, "b.csv", "id\n1\n")
    run = run_tap(folder, emit_activate_version_messages=True,
                  batch_config=batch_config(folder.parent / "batches", batch_size=10))
    assert run.returncode == 0, run.stderr
    for stream, files in (("a", 3), ("b", 1)):
        kinds = [m["type"] for m in run.messages if m.get("stream") == stream]
        assert kinds.count("BATCH") == files
        assert kinds.index("ACTIVATE_VERSION") > max(i for i, kind in enumerate(kinds) if kind == "BATCH")
    assert [len(rows) for rows in (batch_rows(run, "a"),)] == [25]


SCHEMA = arrow_schema(["id", "note"], ["integer", "string"], ["id"], metadata=False)


def _block(rows: int) -> TypedBlock:
    table = pa.Table.from_arrays([pa.array(range(rows), pa.int64()), pa.array(["x" * 1000] * rows)], schema=SCHEMA)
    return TypedBlock(table, ["integer", "string"], {})


@pytest.mark.parametrize(("batch_size", "max_bytes", "sizes"), [
    (250, 10**9, [250, 250, 250, 250]),  # by rows, across blocks
    (10**6, 1, [100] * 10),  # by bytes: each block closes its file
    (150, 150_000, [150, 150, 150, 150, 150, 150, 100]),  # rows first
])
def test_a_batch_file_closes_at_rows_or_bytes_whichever_comes_first(tmp_path, batch_size, max_bytes, sizes):
    config = BatchConfig.from_dict(batch_config(tmp_path, batch_size=batch_size))
    files = BatchFiles(config, "s", SCHEMA, max_bytes)
    blocks = [_block(100) for _ in range(10)] if max_bytes == 1 else [_block(250), _block(500), _block(250)]
    urls = [url for block in blocks for url in files.write(block)] + list(files.finish())
    assert [pq.read_metadata(url.removeprefix("file://")).num_rows for url in urls] == sizes
    assert len(set(urls)) == len(urls) == len(list(tmp_path.iterdir()))


def test_a_tap_stopped_mid_stream_leaves_only_files_it_announced(folder):
    rows = "".join(f"{i},name {i},{'x' * 200}\n" for i in range(200_000))
    write(folder, "big.csv", "id,name,note\n" + rows)
    batches = folder.parent / "batches"
    config_file = folder.parent / "config.json"
    config_file.write_text(json.dumps({"data_dir": str(folder), "cache_dir": str(folder.parent / "cache"),
                                       "emit_activate_version_messages": True,
                                       "batch_config": batch_config(batches, batch_size=5000)}))
    tap = subprocess.Popen([sys.executable, "-m", "tap_wiserock_csv.tap", "--config", str(config_file)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
    announced = []
    assert tap.stdout is not None
    for line in tap.stdout:
        if '"type":"BATCH"' in line:
            announced += json.loads(line)["manifest"]
            if len(announced) == 2:
                tap.send_signal(signal.SIGTERM)
        assert '"ACTIVATE_VERSION"' not in line
    tap.wait(timeout=60)
    assert len(announced) >= 2
    assert sorted(path.as_uri() for path in batches.iterdir()) == sorted(announced)


@pytest.mark.parametrize(("root", "message"), [
    ("s3://bucket/batches", "only local folders (file://...) are supported"),
    ("{folder}/x.csv/batches", "Not a directory"),
])
def test_a_batch_folder_that_cannot_be_used_is_one_line(folder, root, message):
    write(folder, "x.csv", "id\n1\n")
    config = {"encoding": {"format": "parquet", "compression": "none"},
              "storage": {"root": root.format(folder=(folder.as_uri()))}}
    run = run_tap(folder, batch_config=config)
    assert run.returncode != 0
    assert run.last_error_line.startswith("tap-wiserock-csv: error: ") and message in run.last_error_line
    assert "Traceback" not in run.stderr
