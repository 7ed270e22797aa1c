"""Contract 5: RECORD messages (any tap, streams interleaved) and BATCH files (jsonl, jsonl.gz,
parquet) are loaded; batch files are deleted once loaded, and on failure too."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import zoneinfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from target_wiserock_postgres.sinks import BUFFER_ROWS
from tests.conftest import activate, error_line, load, record, run_cli, schema

UTC = dt.timezone.utc
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")


def batch(stream: str, *paths, fmt: str = "parquet", compression: str = "none") -> dict:
    return {"type": "BATCH", "stream": stream, "encoding": {"format": fmt, "compression": compression},
            "manifest": [path.resolve().as_uri() for path in paths]}


def test_interleaved_streams_are_loaded_whole(warehouse):
    """Parent and child records alternating, past the per-stream buffer: every row lands once."""
    count = 3 * BUFFER_ROWS + 7
    messages = [schema("parent", id="integer", name="string"), schema("child", id="integer", parent_id="integer")]
    for n in range(count):
        messages += [record("parent", id=n, name=f"p{n}"), record("child", id=n, parent_id=n)]
    load(warehouse, [*messages, activate("parent"), activate("child")])
    assert warehouse.rows("parent", "count(*), sum(id), count(distinct name)", "1") == [(count, sum(range(count)), count)]
    assert warehouse.rows("child", "count(*), sum(parent_id)", "1") == [(count, sum(range(count)))]


PARQUET_SCHEMA = {"id": "integer", "amount": "number", "exact": "number", "flag": "boolean", "name": "string",
                  "day": "date", "at": "date-time", "naive": "date-time", "doc": "object", "nested": "array",
                  "missing": "string"}


def test_parquet_columns_of_each_kind(warehouse):
    path = warehouse.folder / "part.parquet"
    pq.write_table(pa.table({
        "id": pa.array([1, 2, 3], pa.int32()),
        "amount": pa.array([1.5, None, -0.25]),
        "exact": pa.array(["12345678901234567890.1200", "0.1", None]),  # the CSV tap keeps every digit as text
        "flag": pa.array([True, None, False]),
        "name": pa.array(["", None, 'quote " comma , newline \n end']),
        "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1999, 1, 1)], pa.date32()),
        "at": pa.array([dt.datetime(2024, 1, 1, 1, 30, tzinfo=KOLKATA), None, dt.datetime(2024, 6, 1, tzinfo=KOLKATA)],
                       pa.timestamp("ns", tz="Asia/Kolkata")),
        "naive": pa.array([dt.datetime(2024, 1, 1, 1, 2, 3, 456789), None, None], pa.timestamp("us")),  # noqa: DTZ001
        "doc": pa.array(['{"a": 1}', None, "[]"]),
        "nested": pa.array([[{"k": 1}], None, []], pa.list_(pa.struct([("k", pa.int64())]))),
    }), path)
    load(warehouse, [schema("t", **PARQUET_SCHEMA), batch("t", path), activate("t")])
    assert not path.exists()
    rows = warehouse.rows("t")
    assert rows[0] == (1, decimal.Decimal("1.5"), decimal.Decimal("12345678901234567890.1200"), True, "",
                       dt.date(2024, 2, 29), dt.datetime(2023, 12, 31, 20, 0, tzinfo=UTC),
                       dt.datetime(2024, 1, 1, 1, 2, 3, 456789, tzinfo=UTC), {"a": 1}, [{"k": 1}], None)
    assert rows[1] == (2, None, decimal.Decimal("0.1"), None, None, None, None, None, None, None, None)
    assert rows[2][4] == 'quote " comma , newline \n end' and rows[2][6] == dt.datetime(2024, 5, 31, 18, 30, tzinfo=UTC)


def test_parquet_instants_and_dates_outside_years_1_to_9999_load(warehouse):
    """0001-01-01T00:00+01:00 is 1 BC in UTC, which Arrow writes as year 0 and PostgreSQL refuses;
    years past 9999 PostgreSQL takes as they are."""
    micros_per_hour = 3_600_000_000
    first_ad = -62_135_596_800_000_000  # 0001-01-01 00:00 UTC, in microseconds from 1970
    last_second = 253_402_300_799_000_000  # 9999-12-31 23:59:59 UTC
    path = warehouse.folder / "edges.parquet"
    pq.write_table(pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "at": pa.array([first_ad - micros_per_hour, last_second + 5 * micros_per_hour, 0], pa.timestamp("us", tz="UTC")),
        "day": pa.array([-719_163, 2_932_897, 0], pa.date32()),  # 1 BC December 31, 10000-01-01, 1970-01-01
    }), path)
    load(warehouse, [schema("t", id="integer", at="date-time", day="date"), batch("t", path), activate("t")])
    assert warehouse.rows("t", "id, at::text, day::text", "id") == [
        (1, "0001-12-31 23:00:00+00 BC", "0001-12-31 BC"), (2, "10000-01-01 04:59:59+00", "10000-01-01"),
        (3, "1970-01-01 00:00:00+00", "1970-01-01")]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_jsonl_batch_files(warehouse, compression):
    paths = []
    for part in range(2):
        text = "".join(json.dumps({"id": part * 10 + n, "name": f"n{n}", "doc": {"n": n}}) + "\n" for n in range(3))
        path = warehouse.folder / f"part{part}.jsonl{'.gz' if compression == 'gzip' else ''}"
        path.write_bytes(gzip.compress(text.encode()) if compression == "gzip" else text.encode())
        paths.append(path)
    load(warehouse, [schema("t", id="integer", name="string", doc="object"),
                     batch("t", *paths, fmt="jsonl", compression=compression), record("t", id=99, name="rec"),
                     activate("t")])
    assert warehouse.rows("t", "id, name, doc") == [
        (0, "n0", {"n": 0}), (1, "n1", {"n": 1}), (2, "n2", {"n": 2}), (10, "n0", {"n": 0}), (11, "n1", {"n": 1}),
        (12, "n2", {"n": 2}), (99, "rec", None)]
    assert not any(path.exists() for path in paths)


def test_a_column_the_schema_lacks_is_an_error_and_every_batch_file_is_deleted(warehouse):
    load(warehouse, [schema("t", id="integer"), record("t", id=1), activate("t")])
    loaded, bad, later = (warehouse.folder / f"{name}.parquet" for name in ("loaded", "bad", "later"))
    pq.write_table(pa.table({"id": [2]}), loaded)
    pq.write_table(pa.table({"id": [3], "surprise": ["x"], "another": [1]}), bad)
    pq.write_table(pa.table({"id": [4]}), later)
    result = run_cli(warehouse, [schema("t", id="integer"), batch("t", loaded), batch("t", bad, later), activate("t")])
    assert "has columns the stream's SCHEMA lacks: surprise, another" in error_line(result)
    assert not any(path.exists() for path in (loaded, bad, later))
    assert warehouse.rows("t") == [(1,)]


def test_a_batch_url_that_is_not_a_local_file_is_named(warehouse):
    local = warehouse.folder / "local.parquet"
    pq.write_table(pa.table({"id": [1]}), local)
    message = batch("t", local)
    message["manifest"].append("s3://bucket/part.parquet")
    result = run_cli(warehouse, [schema("t", id="integer"), message, activate("t")])
    assert "batch file s3://bucket/part.parquet is not a local file:// URL" in error_line(result)
    assert not local.exists()
    assert not warehouse.exists("t")


def test_nul_characters_in_parquet_strings_are_removed_and_counted(warehouse, caplog):
    path = warehouse.folder / "nul.parquet"
    pq.write_table(pa.table({"id": [1, 2], "name": ["a\x00b\x00", "plain"]}), path)
    load(warehouse, [schema("t", id="integer", name="string"), batch("t", path), activate("t")])
    assert warehouse.rows("t") == [(1, "ab"), (2, "plain")]
    assert "t: removed 2 NUL characters" in caplog.text
