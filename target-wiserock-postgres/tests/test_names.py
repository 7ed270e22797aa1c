"""Contract 9: any stream or property name PostgreSQL can hold loads exactly, on the RECORD and
BATCH paths alike; a longer one is shortened (logged); a name PostgreSQL cannot hold, or two
that would become the same table or column, end the run in one line, and nothing changes."""

from __future__ import annotations

import gzip
import json
import logging
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from target_wiserock_postgres.names import MAX_IDENTIFIER_BYTES, short_name
from target_wiserock_postgres.snapshots import SNAPSHOTS_TABLE
from tests.conftest import activate, error_line, load, record, run_cli, schema, snapshot

# Names from sources nobody here controls. `wr_load_1` is the name of the loader's own
# temporary table; "Id" and "id" differ only in case.
HOSTILE_COLUMNS = ['a"b', "back\\slash", 'both \\" at once', "with space", "café ünïcödé", "売上", "select",
                   "order", "-- comment", "semi;colon", "'; drop table x; --", "tab\there", "new\nline", "\x01bell\x7f",
                   "Id", "id", "wr_load_1", "%s {} $1"]
HOSTILE_STREAMS = ['st"ream', "wr_load_1", "Mixed Case", "mixed case", "x; drop schema public; --", "таблица\n2"]
KEY = 'k"ey'  # a key column with a hostile name too


def hostile_rows(salt: str) -> list[dict]:
    return [{KEY: n, **{name: f"{salt}{n}:{name}" for name in HOSTILE_COLUMNS}} for n in range(3)]


def batch_message(stream: str, path, fmt: str, compression: str = "none") -> dict:
    return {"type": "BATCH", "stream": stream, "encoding": {"format": fmt, "compression": compression},
            "manifest": [path.as_uri()]}


def stream_messages(house, stream: str, rows: list[dict], path_kind: str) -> list[dict]:
    """One stream's complete snapshot through the RECORD path, or a parquet or jsonl batch file."""
    columns = {KEY: "integer", **dict.fromkeys(HOSTILE_COLUMNS, "string")}
    if path_kind == "record":
        return snapshot(stream, rows, keys=(KEY,), **columns)
    path = house.folder / f"part-{uuid.uuid4().hex}.{path_kind}"
    if path_kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_bytes(gzip.compress("".join(json.dumps(row) + "\n" for row in rows).encode()))
    compression = "gzip" if path_kind == "jsonl" else "none"
    return [schema(stream, (KEY,), **columns), batch_message(stream, path, path_kind, compression), activate(stream)]


def table_rows(house, table: str) -> list[tuple]:
    names = sql.SQL(", ").join(map(sql.Identifier, [KEY, *HOSTILE_COLUMNS]))
    return house.query(sql.SQL("select {} from {} order by 1").format(names, sql.Identifier(house.schema, table))
                       .as_string())


@pytest.mark.parametrize("path_kind", ["record", "parquet", "jsonl"])
def test_hostile_names_load_exactly(warehouse, path_kind):
    """Each stream as a new table, then again into the existing tables (temp tables and the merge)."""
    for salt in ("first", "second"):
        messages = [m for stream in HOSTILE_STREAMS
                    for m in stream_messages(warehouse, stream, hostile_rows(f"{salt}-{stream}"), path_kind)]
        result = run_cli(warehouse, messages)
        assert result.returncode == 0, result.stderr[-3000:]
        for stream in HOSTILE_STREAMS:
            expected = [(row[KEY], *(row[name] for name in HOSTILE_COLUMNS)) for row in hostile_rows(f"{salt}-{stream}")]
            assert table_rows(warehouse, stream) == expected, stream
    tables = warehouse.query("select tablename from pg_tables where schemaname = %s and tablename <> %s",
                             warehouse.schema, SNAPSHOTS_TABLE)  # the loader's own table beside the staging tables
    assert sorted(name for (name,) in tables) == sorted(HOSTILE_STREAMS)
    assert list(warehouse.column_types("Mixed Case")) == [KEY, *HOSTILE_COLUMNS]


def test_a_bad_value_in_a_hostile_column_names_its_table_and_column(warehouse):
    """PostgreSQL writes names raw in its error context (commas, colons, quotes): still the right ones."""
    stream, column = "t, line 5, column x: \"y", 'n, column m: "z'
    load(warehouse, snapshot(stream, [{"id": 1, column: 1}], id="integer", **{column: "integer"}))
    for existing in (True, False):
        if not existing:
            warehouse.query(sql.SQL("drop table {}").format(sql.Identifier(warehouse.schema, stream)).as_string())
        result = run_cli(warehouse, snapshot(stream, [{"id": 2, column: 2}, {"id": 3, column: "three"}],
                                             id="integer", **{column: "integer"}))
        assert f'table {stream}, column {column}: invalid input syntax for type bigint: "three" (record 2 of this ' \
               "run); nothing was changed" in error_line(result)


def test_names_over_63_bytes_are_shortened_and_logged(warehouse, caplog):
    caplog.set_level(logging.INFO)
    stream = "stg_wiserock_csv_" + "a_very_long_export_file_name_from_the_finance_team_2024"
    shared = "quarterly_revenue_by_region_and_product_line_before_adjustments_"  # 64 bytes: two columns share it
    unicode_name = "é" * 40  # 80 bytes: cut between characters, never inside one
    columns = {"id": "integer", shared + "q1": "integer", shared + "q2": "integer", unicode_name: "string"}
    rows = [{"id": 1, shared + "q1": 10, shared + "q2": 20, unicode_name: "x"}]
    load(warehouse, snapshot(stream, rows, **columns))
    load(warehouse, snapshot(stream, rows, **columns))  # the same names again: the existing table
    table = short_name(stream)
    assert table != stream and len(table.encode()) <= MAX_IDENTIFIER_BYTES and table.startswith(stream[:50])
    assert list(warehouse.column_types(table)) == ["id", *map(short_name, list(columns)[1:])]
    assert len(set(warehouse.column_types(table))) == 4 and all(
        len(name.encode()) <= MAX_IDENTIFIER_BYTES for name in warehouse.column_types(table))
    assert warehouse.rows(table) == [(1, 10, 20, "x")]
    assert f"stream {stream!r} is longer than 63 bytes; its table is {table}" in caplog.text
    assert f"table {table}: property {shared + 'q2'!r} is longer than 63 bytes; its column is " \
           f"{short_name(shared + 'q2')}" in caplog.text


def test_two_properties_that_shorten_alike_are_refused(warehouse):
    long = "p" * 70
    load(warehouse, snapshot("t", [{"id": 1}], id="integer"))
    result = run_cli(warehouse, snapshot("t", [{"id": 2, long: 1, short_name(long): 2}], id="integer",
                                         **{long: "integer", short_name(long): "integer"}))
    assert f"stream 't': properties {long!r} and {short_name(long)!r} would both be column {short_name(long)!r}" \
           in error_line(result)
    assert warehouse.rows("t") == [(1,)]


def test_a_later_schema_cannot_take_over_a_column(warehouse):
    long = "p" * 70
    result = run_cli(warehouse, [schema("t", id="integer", **{long: "integer"}), record("t", id=1),
                                 schema("t", id="integer", **{short_name(long): "integer"})])
    assert "would both be column" in error_line(result)
    assert not warehouse.exists("t")


def test_two_streams_that_shorten_alike_are_refused(warehouse):
    long = "s" * 70
    result = run_cli(warehouse, [*snapshot(long, [{"id": 1}], id="integer"),
                                 *snapshot(short_name(long), [{"id": 2}], id="integer")])
    assert f"streams {long!r} and {short_name(long)!r} would both load table {short_name(long)}" in error_line(result)
    assert not warehouse.exists(short_name(long))


@pytest.mark.parametrize(("stream", "column", "expected"), [
    ("a\x00b", "id", "stream 'a\\x00b': its name contains a NUL character"),
    ("t", "c\x00d", "stream 't': property 'c\\x00d' contains a NUL character"),
    ("", "id", "stream '': its name is empty"),
    ("t", "", "stream 't': property '' is empty"),
    ("t", "xmin", "stream 't': property 'xmin' has the name of a PostgreSQL system column"),
])
def test_a_name_postgresql_cannot_hold_is_refused_in_one_line(warehouse, stream, column, expected):
    load(warehouse, snapshot("t", [{"id": 1}], id="integer"))
    result = run_cli(warehouse, [*snapshot("t", [{"id": 2}], id="integer"),
                                 *snapshot(stream, [{"id": 1, column: 1}], keys=(), **{column: "integer"})])
    assert expected in error_line(result)
    assert warehouse.rows("t") == [(1,)]
