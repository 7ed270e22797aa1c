"""Issue 17: files received from other systems load as they are: repeated headers, title lines, no header."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.conftest import run_tap, write
from tests.test_real_world import assert_one_line_error

# A scikit-learn style dump: a title line of counts and class names, then the header, then data.
TITLE_THEN_HEADER = ("569,5,malignant,benign\nradius,texture,area,smooth,target\n17.99,10.38,1001,0.1184,0\n"
                     "20.57,17.77,1326,0.08474,0\n7.76,24.54,181,0.05263,1\n")


# -- repeated headers ------------------------------------------------------------------------------

def test_repeated_headers_are_numbered_in_header_order_and_logged_once_with_both_headers(folder):
    path = write(folder, "export.csv", "ID,Name,id,0,0,id_2\n1,a,10,x,w,z\n2,b,20,x,w,z\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert list(run.properties("export")) == ["id", "name", "id_3", "_0", "_0_2", "id_2"]
    assert run.records("export") == [
        {"id": 1, "name": "a", "id_3": 10, "_0": "x", "_0_2": "w", "id_2": "z"},
        {"id": 2, "name": "b", "id_3": 20, "_0": "x", "_0_2": "w", "id_2": "z"},
    ]
    logged = [line for line in run.stderr.splitlines() if "headers repeat a column name" in line]
    assert len(logged) == 1, run.stderr
    assert f"{path} line 1:" in logged[0]
    assert "'ID' (column 1) -> id, 'id' (column 3) -> id_3" in logged[0]
    assert "'0' (column 4) -> _0, '0' (column 5) -> _0_2" in logged[0]


def test_keys_and_types_name_a_renamed_column_by_its_name_or_its_header_when_written_once(folder):
    write(folder, "export.csv", "Code,code,0,0\nA,1,x,5\nB,1,y,6\n")
    run = run_tap(folder, files=[{"path": "export.csv", "keys": ["Code"], "column_types": {"code_2": "string"}}])
    assert run.returncode == 0, run.stderr
    assert run.schema("export")["key_properties"] == ["code"]
    assert run.properties("export")["code_2"] == {"type": ["string", "null"]}
    by_name = run_tap(folder, files=[{"path": "export.csv", "keys": ["code", "_0_2"]}])
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.schema("export")["key_properties"] == ["code", "_0_2"]  # a column name wins over a header
    ambiguous = run_tap(folder, files=[{"path": "export.csv", "keys": ["0"]}])
    assert_one_line_error(ambiguous, "export.csv: key columns: '0' is the header of 2 columns (_0, _0_2); "
                                     "give the column name instead")


# -- skip_lines ------------------------------------------------------------------------------------

@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_skip_lines_passes_over_physical_title_lines_and_line_numbers_stay_the_files_own(folder, newline):
    # An odd quote and a quoted line break in the title lines: physical lines, not CSV records.
    title = 'Sales report "Q3,generated 2026-11-30\n"multi\nline title",x\n'
    body = 'id,amount,note\n1,5.5,a\n2,oops,"two\nlines"\n3,7,c\n'
    path = write(folder, "report.csv", (title + body).replace("\n", newline))
    run = run_tap(folder, on_bad_row="skip", add_metadata_columns=True,
                  files=[{"path": "report.csv", "skip_lines": 3, "column_types": {"amount": "number"}}])
    assert run.returncode == 0, run.stderr
    assert [(r["id"], r["amount"], r["_sdc_source_lineno"]) for r in run.records("report")] == [
        (1, Decimal("5.5"), 5), (3, 7, 8)]
    assert f"{path} line 6: column 'amount': 'oops' is not a number" in run.stderr


def test_skip_lines_is_global_and_per_file(folder):
    write(folder, "a.csv", "Report A\nid,v\n1,p\n")
    write(folder, "b.csv", "id,v\n2,q\n")
    run = run_tap(folder, skip_lines=1, files=[{"path": "b.csv", "skip_lines": 0}])
    assert run.returncode == 0, run.stderr
    assert run.records("a") == [{"id": 1, "v": "p"}]
    assert run.records("b") == [{"id": 2, "v": "q"}]


@pytest.mark.parametrize("on_bad_row", ["fail", "skip"])
def test_a_title_line_read_as_the_header_fails_naming_skip_lines(folder, on_bad_row):
    path = write(folder, "breast_cancer.csv", TITLE_THEN_HEADER)
    run = run_tap(folder, on_bad_row=on_bad_row)
    assert_one_line_error(run, f"{path}", "line 2: expected 4 fields, found 5",
                          "line 1 has 4 fields where most of the next lines have 5",
                          'set skip_lines in its files entry, e.g. {"path": "breast_cancer.csv", "skip_lines": 1}')
    fixed = run_tap(folder, files=[{"path": "breast_cancer.csv", "skip_lines": 1}])
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.records("breast_cancer")[0] == {"radius": Decimal("17.99"), "texture": Decimal("10.38"),
                                                 "area": 1001, "smooth": Decimal("0.1184"), "target": 0}


def test_title_lines_with_fewer_fields_than_the_data_suggest_how_many_lines_to_skip(folder):
    path = write(folder, "sales.csv", "Sales report,generated 2026-11-30\nRegion: all\n\n"
                                      + "id,a,b,c,d\n" + "".join(f"{i},1,2,3,4\n" for i in range(30)))
    run = run_tap(folder)
    assert_one_line_error(run, f"{path} line 2", "line 1 has 2 fields where most of the next lines have 5",
                          '"skip_lines": 3}')


def test_a_title_line_holding_a_semicolon_is_not_taken_for_the_wrong_delimiter(folder):
    path = write(folder, "x.csv", "Export; all rows\nid,name\n1,a\n2,b\n")
    run = run_tap(folder)
    assert_one_line_error(run, f"{path} line 2: expected 1 fields, found 2", '"skip_lines": 1}')
    assert "semicolon" not in run.last_error_line


def test_a_header_that_is_just_short_gets_no_title_hint(folder):
    path = write(folder, "x.csv", "a,b\n1,2\n3,4,5\n6,7\n")
    run = run_tap(folder)
    assert run.last_error_line == f"tap-wiserock-csv: error: {path} line 3: expected 2 fields, found 3"


@pytest.mark.parametrize(("content", "skip", "message"), [
    ("Report\nid\n", 5, "skip_lines is 5, but the file has only 2 lines"),
    ("Report", 2, "skip_lines is 2, but the file has only 1 line"),
    ("Report\nsecond\n", 2, "no header line after the 2 lines skip_lines passes over"),
    ("Report\n\n\n", 1, "no header line after the 1 lines skip_lines passes over"),
])
def test_skip_lines_past_the_end_of_the_file_is_one_line(folder, content, skip, message):
    path = write(folder, "x.csv", content)
    run = run_tap(folder, files=[{"path": "x.csv", "skip_lines": skip}])
    assert_one_line_error(run)
    assert run.last_error_line == f"tap-wiserock-csv: error: {path}: {message}"


def test_a_zero_byte_file_is_still_only_empty_with_skip_lines(folder):
    write(folder, "empty.csv", b"")
    write(folder, "x.csv", "Report\nid\n1\n")
    run = run_tap(folder, skip_lines=1)
    assert run.returncode == 0, run.stderr
    assert run.streams == ["x"] and "empty.csv: the file is empty" in run.stderr


# -- header: false ---------------------------------------------------------------------------------

def test_a_file_without_a_header_has_numbered_columns_and_every_line_is_data(folder):
    write(folder, "dump.csv", "6.320000000000000097e-03,18,x\n2.731000000000000120e-02,0,\n,7,\"\"\n")
    run = run_tap(folder, add_metadata_columns=True, files=[{"path": "dump.csv", "header": False}])
    assert run.returncode == 0, run.stderr
    assert list(run.properties("dump")) == ["column_1", "column_2", "column_3", "_sdc_source_file",
                                             "_sdc_source_lineno"]
    assert run.schema("dump")["key_properties"] == []
    assert [(r["column_1"], r["column_2"], r["column_3"], r["_sdc_source_lineno"]) for r in run.records("dump")] == [
        (Decimal("6.320000000000000097e-03"), 18, "x", 1), (Decimal("2.731000000000000120e-02"), 0, None, 2),
        (None, 7, "", 3)]


def test_a_file_without_a_header_takes_keys_skip_lines_and_types_by_column_name(folder):
    write(folder, "dump.csv", "Exported 2026-11-30\n7,a\n8,b\n")
    run = run_tap(folder, files=[{"path": "dump.csv", "header": False, "skip_lines": 1, "keys": ["column_1"],
                                  "column_types": {"column_1": "string"}}])
    assert run.returncode == 0, run.stderr
    assert run.schema("dump")["key_properties"] == ["column_1"]
    assert run.records("dump") == [{"column_1": "7", "column_2": "a"}, {"column_1": "8", "column_2": "b"}]


def test_a_ragged_row_in_a_file_without_a_header_is_a_bad_row_with_file_and_line(folder):
    path = write(folder, "dump.csv", "1,a\n2,b\n3\n4,d,extra\n5,e\n")
    failed = run_tap(folder, files=[{"path": "dump.csv", "header": False}])
    assert_one_line_error(failed)
    assert failed.last_error_line == f"tap-wiserock-csv: error: {path} line 3: expected 2 fields, found 1"
    skipped = run_tap(folder, on_bad_row="skip", files=[{"path": "dump.csv", "header": False}])
    assert skipped.returncode == 0, skipped.stderr
    assert [r["column_1"] for r in skipped.records("dump")] == [1, 2, 5]
    assert f"{path} line 4: expected 2 fields, found 3" in skipped.stderr


def test_a_header_less_file_whose_first_line_is_malformed_fails_naming_it(folder):
    path = write(folder, "dump.csv", '1,"open\n')
    run = run_tap(folder, files=[{"path": "dump.csv", "header": False}])
    assert_one_line_error(run, f"{path} line 1: first row (it fixes the columns): malformed CSV")
