"""Nulls, type inference, keys and bad input: SCHEMA and RECORD messages as expected."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import run_tap, write

NULLABLE = {"integer": {"type": ["integer", "null"]}, "number": {"type": ["number", "null"]},
            "boolean": {"type": ["boolean", "null"]}, "string": {"type": ["string", "null"]},
            "date": {"type": ["string", "null"], "format": "date"},
            "date-time": {"type": ["string", "null"], "format": "date-time"}}


def test_nulls_and_exact_strings(folder):
    write(folder, "t.csv", 'a,b,c\n,"",  x  \nNULL,null,"NULL"\nNuLl,"",\n')
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.records("t") == [
        {"a": None, "b": "", "c": "  x  "},
        {"a": None, "b": None, "c": None},
        {"a": None, "b": "", "c": None},
    ]


@pytest.mark.parametrize(("values", "kind", "emitted"), [
    (["true", "False", "YES", "no", "Y", "n", "t", "F"], "boolean", [True, False, True, False, True, False, True, False]),
    (["12", "-7", "0"], "integer", [12, -7, 0]),
    (["00123", "45"], "string", ["00123", "45"]),
    (["1e3", "-2.25", "7", ".5"], "number", [Decimal("1e3"), Decimal("-2.25"), 7, Decimal(".5")]),
    (["2024-03-01", "1999-12-31"], "date", ["2024-03-01", "1999-12-31"]),
    (["2024-03-01T10:00:00+02:00", "2024-03-01 23:30:00Z", "2024-03-01T10:00:00.5-0130"], "date-time",
     ["2024-03-01T08:00:00+00:00", "2024-03-01T23:30:00+00:00", "2024-03-01T11:30:00.500000+00:00"]),
    # Naive date-times are read as UTC.
    (["2024-03-01T10:00:00", "2024-03-02 11:15"], "date-time", ["2024-03-01T10:00:00+00:00", "2024-03-02T11:15:00+00:00"]),
    (["12", "abc"], "string", ["12", "abc"]),
    (["2024-03-01", "2024-03-01T10:00:00"], "string", ["2024-03-01", "2024-03-01T10:00:00"]),
    (["2024-02-30"], "string", ["2024-02-30"]),
    (["0", "1", "1"], "integer", [0, 1, 1]),
    (["NaN", "inf"], "string", ["NaN", "inf"]),
])
def test_types_inferred_from_values(folder, values, kind, emitted):
    write(folder, "t.csv", "value\n" + "\n".join(values) + "\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.properties("t")["value"] == NULLABLE[kind]
    assert [r["value"] for r in run.records("t")] == emitted


@pytest.mark.parametrize("column", ["activeflag", "active_flag", "is_gift", "has_children"])
def test_zero_one_columns_with_flag_names_are_boolean(folder, column):
    write(folder, "t.csv", f"{column},count\n1,1\n0,0\n,1\n")
    run = run_tap(folder)
    assert run.properties("t")[column] == NULLABLE["boolean"]
    assert run.properties("t")["count"] == NULLABLE["integer"]
    assert [r[column] for r in run.records("t")] == [True, False, None]


def test_a_late_row_turns_an_integer_column_into_text(folder):
    rows = [f"{i},{i * 3}" for i in range(1, 3001)] + ["3001,abc"] + [f"{i},{i}" for i in range(3002, 3100)]
    write(folder, "t.csv", "id,code\n" + "\n".join(rows) + "\n")
    run = run_tap(folder)
    assert run.properties("t")["code"] == NULLABLE["string"]
    records = run.records("t")
    assert records[0] == {"id": 1, "code": "3"}
    assert records[3000] == {"id": 3001, "code": "abc"}
    assert all(isinstance(r["code"], str) for r in records)


def test_forced_types_and_misfits(folder):
    write(folder, "t.csv", "zip,total\n02134,5\n10001,6.5\n")
    run = run_tap(folder, files=[{"path": "t.csv", "column_types": {"total": "number", "zip": "string"}}])
    assert run.properties("t") == {"zip": NULLABLE["string"], "total": NULLABLE["number"]}
    assert run.records("t") == [{"zip": "02134", "total": 5}, {"zip": "10001", "total": Decimal("6.5")}]
    forced = run_tap(folder, files=[{"path": "t.csv", "column_types": {"total": "integer"}}])
    assert forced.returncode != 0
    assert "t.csv line 3" in forced.last_error_line and "'6.5' is not an integer" in forced.last_error_line


def test_keys_from_id_column_override_or_none(folder):
    write(folder, "with_id.csv", "ID,name\n1,a\n")
    write(folder, "coded.csv", "code,name\nx,a\n")
    write(folder, "plain.csv", "name\na\n")
    run = run_tap(folder, files=[{"path": "coded.csv", "keys": ["code"]}])
    keys = {m["stream"]: m["key_properties"] for m in run.messages if m["type"] == "SCHEMA"}
    assert keys == {"coded": ["code"], "with_id": ["id"], "plain": []}
    assert run.properties("with_id")["id"] == {"type": ["integer"]}  # a key is never null


def test_bom_crlf_quoted_newlines_and_line_numbers(folder):
    text = '\ufeffid,Note\r\n1,"two\r\nlines"\r\n2,"say ""hi"", ok"\r\n3,plain\r\n'
    write(folder, "t.csv", text)
    run = run_tap(folder, add_metadata_columns=True)
    assert run.returncode == 0, run.stderr
    assert run.records("t") == [
        {"id": 1, "note": "two\r\nlines", "_sdc_source_file": str(folder / "t.csv"), "_sdc_source_lineno": 2},
        {"id": 2, "note": 'say "hi", ok', "_sdc_source_file": str(folder / "t.csv"), "_sdc_source_lineno": 4},
        {"id": 3, "note": "plain", "_sdc_source_file": str(folder / "t.csv"), "_sdc_source_lineno": 5},
    ]


def test_other_delimiter_and_encoding(folder):
    write(folder, "t.csv", "id;ville\n1;Montréal\n", encoding="latin-1")
    run = run_tap(folder, delimiter=";", encoding="latin-1")
    assert run.records("t") == [{"id": 1, "ville": "Montréal"}]


@pytest.mark.parametrize(("content", "line", "reason"), [
    ("id,name\n1,a\n2,b,extra\n3,c\n", 3, "expected 2 fields, found 3"),
    ("id,name\n1,a\n2\n3,c\n", 3, "expected 2 fields, found 1"),
    (b"id,name\n1,a\n2,caf\xe9\n3,c\n", 3, "byte 0xe9 cannot be decoded as utf-8"),
    ("id,name\n1,a\n,b\n3,c\n", 3, "key column 'id' is null"),
])
def test_bad_rows_fail_with_file_line_and_reason(folder, content, line, reason):
    path = write(folder, "t.csv", content)
    run = run_tap(folder)
    assert run.returncode != 0
    assert run.last_error_line == f"tap-wiserock-csv: error: {path} line {line}: {reason}"
    assert run.records("t") == []  # refused before anything was emitted
    assert "Traceback" not in run.stderr


def test_bad_rows_skipped_are_logged_counted_and_left_out(folder):
    path = write(folder, "t.csv", b"id,name\n1,a\n2,b,extra\n3,caf\xe9\n4,d\n")
    run = run_tap(folder, on_bad_row="skip")
    assert run.returncode == 0, run.stderr
    assert run.records("t") == [{"id": 1, "name": "a"}, {"id": 4, "name": "d"}]
    assert f"{path} line 3: expected 2 fields, found 3" in run.stderr
    assert f"{path} line 4: byte 0xe9 cannot be decoded as utf-8" in run.stderr
    assert "Skipped 2 bad rows" in run.stderr


def test_empty_and_header_only_files(folder):
    write(folder, "empty.csv", b"")
    write(folder, "header_only.csv", "id,Name\r\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.streams == ["header_only"]
    assert run.properties("header_only") == {"id": {"type": ["string"]}, "name": NULLABLE["string"]}
    assert run.records("header_only") == []
    assert "empty.csv: the file is empty" in run.stderr


def test_missing_folder_is_one_line(folder):
    run = run_tap(folder / "nope")
    assert run.returncode != 0
    assert "nope" in run.last_error_line and "is not a folder" in run.last_error_line
    assert "Traceback" not in run.stderr
