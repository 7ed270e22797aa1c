"""Issue 10: patterns from real CSV files that must load right or fail in one line, never load wrong.

Each test is named after the defect it guards (numbers as in the issue).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.conftest import run_tap, write

NUMBER = {"type": ["number", "null"]}
INTEGER = {"type": ["integer", "null"]}
STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": ["string", "null"], "format": "date-time"}


def assert_one_line_error(run, *parts):
    assert run.returncode != 0
    assert run.last_error_line.startswith("tap-wiserock-csv: error: "), run.stderr[-2000:]
    for part in parts:
        assert part in run.last_error_line, run.last_error_line
    assert "Traceback" not in run.stderr
    assert not [m for m in run.messages if m["type"] in {"RECORD", "ACTIVATE_VERSION", "BATCH"}]


@pytest.mark.parametrize("on_bad_row", ["fail", "skip"])
def test_01_a_quoted_field_over_128_kib_loads_whole(folder, on_bad_row):
    note = "\n".join(f"log line {i}, with, commas" for i in range(5000))
    assert len(note) > 128 * 1024
    write(folder, "x.csv", f'id,note,amount\n1,short,10\n2,"{note}",20\n3,last,30\n')
    run = run_tap(folder, on_bad_row=on_bad_row)
    assert run.returncode == 0, run.stderr
    assert run.properties("x")["id"] == {"type": ["integer"]}
    assert run.records("x") == [{"id": 1, "note": "short", "amount": 10}, {"id": 2, "note": note, "amount": 20},
                                {"id": 3, "note": "last", "amount": 30}]


def test_02_numbers_beyond_the_double_range_keep_their_value(folder):
    write(folder, "x.csv", "v\n1e400\n-1e400\n1e-400\n2.5\n")
    run = run_tap(folder)
    assert run.properties("x")["v"] == NUMBER
    assert [r["v"] for r in run.records("x")] == [Decimal("1e400"), Decimal("-1e400"), Decimal("1e-400"),
                                                  Decimal("2.5")]


def test_03_integers_beyond_64_bits_stay_distinct_and_the_64_bit_range_is_exact(folder):
    write(folder, "sim.csv", "iccid\n89014103211118510720\n89014103211118510721\n")
    write(folder, "edges.csv", "v\n-9223372036854775808\n9223372036854775807\n")
    run = run_tap(folder)
    assert run.properties("sim")["iccid"] == NUMBER
    assert [r["iccid"] for r in run.records("sim")] == [89014103211118510720, 89014103211118510721]
    assert run.properties("edges")["v"] == INTEGER
    assert [r["v"] for r in run.records("edges")] == [-9223372036854775808, 9223372036854775807]


def test_04_date_times_outside_the_utc_calendar_are_emitted_in_their_own_offset(folder):
    write(folder, "x.csv", "valid_to\n9999-12-31 23:59:59-05\n0001-01-01T00:00:00+01:00\n2024-01-01T00:00:00+01:00\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.properties("x")["valid_to"] == DATE_TIME
    assert [r["valid_to"] for r in run.records("x")] == [
        "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "2023-12-31T23:00:00+00:00"]


def test_05_a_digit_string_over_4300_characters_is_an_exact_number(folder):
    digits = "7" * 5000
    write(folder, "x.csv", f"v\n{digits}\n1\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.properties("x")["v"] == NUMBER
    assert [r["v"] for r in run.records("x")] == [Decimal(digits), 1]


def test_06_skip_with_every_row_bad_fails_instead_of_emptying_the_table(folder):
    path = write(folder, "x.csv", "a,b\n1\n2\n3,4,5\n")
    run = run_tap(folder, on_bad_row="skip", emit_activate_version_messages=True)
    assert_one_line_error(run, f"{path}: 3 bad rows, every row is bad", "line 2: expected 2 fields, found 1")


@pytest.mark.parametrize(("limit", "fails"), [(None, False), (2, False), (1, True), (0.5, False), (0.3, True)])
def test_06_max_bad_rows_is_a_count_or_a_share(folder, limit, fails):
    write(folder, "x.csv", "a,b\n1,1\n2\n3,3\n4,4,4\n5,5\n")  # 2 bad rows of 5
    config = {"on_bad_row": "skip"} | ({} if limit is None else {"max_bad_rows": limit})
    run = run_tap(folder, **config)
    if fails:
        assert_one_line_error(run, "2 bad rows, more than max_bad_rows")
    else:
        assert run.returncode == 0, run.stderr
        assert [r["a"] for r in run.records("x")] == [1, 3, 5]


def test_07_an_automatic_id_key_that_is_not_unique_fails_naming_a_value_and_the_fix(folder):
    rows = "".join(f"{i % 8},visit {i}\n" for i in range(96))
    path = write(folder, "subjects.csv", "id,visit\n" + rows)
    run = run_tap(folder)
    assert_one_line_error(run, f"{path}: the key (id) is not unique: '0' is on lines 2 and 10",
                          '{"path": "subjects.csv", "keys": ["id", "visit"]}', '"keys": []')
    unique = run_tap(folder, files=[{"path": "subjects.csv", "keys": ["id", "visit"]}])
    assert unique.returncode == 0, unique.stderr
    assert len(unique.records("subjects")) == 96
    keyless = run_tap(folder, files=[{"path": "subjects.csv", "keys": []}])
    assert keyless.schema("subjects")["key_properties"] == []
    assert len(keyless.records("subjects")) == 96


def test_07_text_and_compound_keys_are_checked_too(folder):
    write(folder, "codes.csv", "code,name\nA-1,x\nB-2,y\nA-1,z\n")
    run = run_tap(folder, files=[{"path": "codes.csv", "keys": ["code"]}])
    assert_one_line_error(run, "the key (code) is not unique: 'A-1' is on lines 2 and 4")


def test_08_an_odd_utf16_file_names_file_and_line(folder):
    data = "id,note\n1,a\n2,xy\n".encode("utf-16-le")[:-1]
    path = write(folder, "x.csv", data)
    run = run_tap(folder, encoding="utf-16-le")
    assert_one_line_error(run, f"{path} line 3: byte 0x0a cannot be decoded as utf-16-le")


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809", "89014103211118510720"])
def test_09_a_forced_integer_beyond_64_bits_is_a_bad_row(folder, value):
    path = write(folder, "x.csv", f"n\n1\n{value}\n")
    run = run_tap(folder, files=[{"path": "x.csv", "column_types": {"n": "integer"}}])
    assert_one_line_error(run, f"{path} line 3: column 'n': '{value}' is not an integer")
    skipped = run_tap(folder, on_bad_row="skip", files=[{"path": "x.csv", "column_types": {"n": "integer"}}])
    assert [r["n"] for r in skipped.records("x")] == [1]


def test_10_keys_may_name_the_header_as_written(folder):
    write(folder, "orders.csv", "Order ID,Total\n1,5\n2,6\n")
    run = run_tap(folder, files=[{"path": "orders.csv", "keys": ["Order ID"], "column_types": {"Total": "number"}}])
    assert run.returncode == 0, run.stderr
    assert run.schema("orders")["key_properties"] == ["order_id"]
    wrong = run_tap(folder, files=[{"path": "orders.csv", "keys": ["OrderId"]}])
    assert_one_line_error(wrong, "key columns not in the file: OrderId", "columns: order_id, total")


def test_11_plural_acronyms_stay_whole(folder):
    write(folder, "x.csv", "userIDs,URLs,numCPUs\n1,2,3\n")
    assert list(run_tap(folder).properties("x")) == ["user_ids", "urls", "num_cpus"]


def test_12_sub_microsecond_digits_are_never_cut_without_a_word(folder):
    write(folder, "x.csv", "exact,zeros\n2024-01-01T00:00:00.123456789Z,2024-01-01T00:00:00.123456000Z\n")
    run = run_tap(folder)
    assert run.properties("x") == {"exact": STRING, "zeros": DATE_TIME}
    assert run.records("x") == [{"exact": "2024-01-01T00:00:00.123456789Z", "zeros": "2024-01-01T00:00:00.123456+00:00"}]
    assert "Column 'exact'" in run.stderr and "digits beyond microseconds" in run.stderr
    forced = run_tap(folder, files=[{"path": "x.csv", "column_types": {"exact": "date-time"}}])
    assert forced.records("x")[0]["exact"] == "2024-01-01T00:00:00.123456+00:00"
    assert "Cut 1 values of column 'exact'" in forced.stderr


def test_13_null_markers_are_a_setting_and_per_file(folder):
    write(folder, "a.csv", "v\n1.5\nNA\nn/a\n-\n2\n")
    write(folder, "b.csv", "v\n1\nNA\n")
    run = run_tap(folder, null_values=["NA", "N/A", "-", "NULL"], files=[{"path": "b.csv", "null_values": []}])
    assert run.properties("a")["v"] == NUMBER
    assert [r["v"] for r in run.records("a")] == [Decimal("1.5"), None, None, None, 2]
    assert run.properties("b")["v"] == STRING  # the file's own markers: none
    forced = run_tap(folder, null_values=["NA", "n/a", "-"], files=[{"path": "a.csv", "column_types": {"v": "number"}}])
    assert forced.returncode == 0, forced.stderr
    assert [r["v"] for r in forced.records("a")] == [Decimal("1.5"), None, None, None, 2]


def test_14_letters_are_transliterated_and_long_names_shortened_apart(folder):
    long_a, long_b = "a" * 70 + " one", "a" * 70 + " two"
    write(folder, "売上.csv", f"Größe,Grüße,{long_a},{long_b}\n1,2,3,4\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.streams == ["mai_shang"]
    names = list(run.properties("mai_shang"))
    assert names[:2] == ["grosse", "grusse"]
    assert all(len(name.encode()) <= 63 for name in names) and len(set(names)) == 4
    assert names[2].startswith("a" * 50) and names[2] != names[3]


def test_15_rows_of_only_delimiters_are_passed_over_and_counted(folder):
    write(folder, "x.csv", "id,name,amount\n1,a,5\n,,\n2,b,6\n,,\n,,,\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.records("x") == [{"id": 1, "name": "a", "amount": 5}, {"id": 2, "name": "b", "amount": 6}]
    assert "Passed over 3 rows of" in run.stderr


def test_16_nul_characters_are_removed(folder):
    write(folder, "x.csv", "id,note\n1,a\x00b\n2,\x00\n")
    run = run_tap(folder)
    # Removed before parsing, as if never written: a field of only NULs is an empty field.
    assert run.records("x") == [{"id": 1, "note": "ab"}, {"id": 2, "note": None}]
    assert "Removed 2 NUL characters" in run.stderr


def test_17_a_wrong_delimiter_fails_naming_the_one_found(folder):
    path = write(folder, "x.csv", "id;name;amount\n1;a;5\n")
    run = run_tap(folder)
    assert_one_line_error(run, f"{path} line 1:", "semicolon", '"delimiter": ";"')
    fixed = run_tap(folder, files=[{"path": "x.csv", "delimiter": ";"}])
    assert fixed.records("x") == [{"id": 1, "name": "a", "amount": 5}]


def test_18_naive_and_offset_date_times_mixed_are_all_utc(folder):
    write(folder, "x.csv", "at\n2024-03-01 10:00:00\n2024-03-01T10:00:00+02:00\n2024-03-01T10:00Z\n")
    run = run_tap(folder)
    assert [r["at"] for r in run.records("x")] == [
        "2024-03-01T10:00:00+00:00", "2024-03-01T08:00:00+00:00", "2024-03-01T10:00:00+00:00"]


def test_no_traceback_on_any_of_these_shapes_in_skip_mode(folder):
    """Every shape above in one folder, skipped or loaded: exit 0, no traceback, no invented rows."""
    note = "x, y\n" * 30000
    write(folder, "a.csv", f'id,note\n1,"{note}"\n2,"unterminated\n')
    write(folder, "b.csv", "v\n1e400\n" + "9" * 5000 + "\n9999-12-31 23:59:59-05\n")
    run = run_tap(folder, on_bad_row="skip")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert [r["id"] for r in run.records("a")] == [1]
    assert re.search(r"a.csv line 30003: malformed CSV: unexpected end of data", run.stderr)
    assert [r["v"] for r in run.records("b")] == ["1e400", "9" * 5000, "9999-12-31 23:59:59-05"]
