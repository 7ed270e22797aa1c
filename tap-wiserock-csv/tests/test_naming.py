"""Column and stream naming rules."""

from __future__ import annotations

import pytest

from tap_wiserock_csv.naming import column_names, snake_name
from tests.conftest import run_tap, write


@pytest.mark.parametrize(("header", "expected"), [
    ("createdAt", "created_at"),
    ("ActiveFlag", "active_flag"),
    ("  Customer Name  ", "customer_name"),
    ("E-mail Address", "e_mail_address"),
    ("userID", "user_id"),
    ("HTTPServer", "http_server"),
    ("1st choice", "_1st_choice"),
    ("Price (€)", "price"),
    ("a__b--c", "a_b_c"),
    ("__x__", "x"),
    ("Zip Code 5", "zip_code_5"),
    ("", "column_3"),
    ("%%%", "column_3"),
    # Issue 10, 11: plural acronyms stay whole.
    ("userIDs", "user_ids"),
    ("URLs", "urls"),
    ("numCPUs", "num_cpus"),
    ("IDsCount", "ids_count"),
    # Issue 10, 14: letters of any script are transliterated (anyascii), symbols are separators.
    ("Größe", "grosse"),
    ("Grüße", "grusse"),
    ("売上", "mai_shang"),
    ("Ελλάδα", "ellada"),
])
def test_column_names(header, expected):
    assert snake_name(header, 3) == expected


def test_long_names_are_cut_to_63_bytes_with_a_hash_that_keeps_them_apart():
    first, second = snake_name("x" * 80 + "_first", 1), snake_name("x" * 80 + "_second", 1)
    assert len(first) == len(second) == 63
    assert first != second and first.startswith("x" * 54)
    assert snake_name("x" * 80 + "_first", 9) == first  # the same every run, wherever the column stands


def test_letters_without_a_transliteration_get_a_stable_name_of_their_own():
    alef = "\u0627"  # an Arabic letter that anyascii maps to nothing
    assert snake_name(alef, 1) == snake_name(alef, 7) != snake_name(alef * 2, 1)
    assert snake_name(alef, 1).startswith("column_") and snake_name(alef, 1) != "column_1"


def test_headers_and_stream_names_as_emitted(folder):
    write(folder, "Order Items.CSV", "ID,createdAt,,1st choice\n1,2024-01-01,x,y\n")
    run = run_tap(folder)
    assert run.returncode == 0, run.stderr
    assert run.streams == ["order_items"]
    assert list(run.properties("order_items")) == ["id", "created_at", "column_3", "_1st_choice"]


@pytest.mark.parametrize(("headers", "expected"), [
    (["ID", "name", "id"], ["id", "name", "id_2"]),
    (["0", "0", "0"], ["_0", "_0_2", "_0_3"]),
    # A suffix never takes a name another header has of its own: the next free number.
    (["id", "ID", "id_2"], ["id", "id_3", "id_2"]),
    (["a", "a_2", "A", "a"], ["a", "a_2", "a_3", "a_4"]),
    (["x", "", "Column 2", ""], ["x", "column_2", "column_2_2", "column_4"]),
])
def test_repeated_names_get_the_next_free_number_in_header_order(headers, expected):
    assert column_names(headers, "x.csv") == expected


def test_a_suffixed_long_name_is_cut_so_that_the_suffix_survives_within_63_bytes():
    long = "Quarterly revenue by region and product line " * 3
    names = column_names([long, long.upper(), long, long + " "], "x.csv")
    assert all(len(name.encode()) <= 63 for name in names)
    assert len(set(names)) == 4
    assert names[1].endswith("_2") and names[2].endswith("_3") and names[3].endswith("_4")
    assert names[0] == snake_name(long, 1) and names[1][:-2] == names[0][:61]


def test_colliding_headers_fail_with_duplicate_headers_fail(folder):
    write(folder, "people.csv", "First Name,first_name\nA,B\n")
    for config in ({"duplicate_headers": "fail"}, {"files": [{"path": "people.csv", "duplicate_headers": "fail"}]}):
        run = run_tap(folder, **config)
        assert run.returncode != 0
        assert run.last_error_line == (f"tap-wiserock-csv: error: {folder / 'people.csv'} line 1: headers 'First Name' "
                                       "and 'first_name' both normalize to column name 'first_name'")
        assert "Traceback" not in run.stderr
    renamed = run_tap(folder, duplicate_headers="fail", files=[{"path": "people.csv", "duplicate_headers": "rename"}])
    assert renamed.returncode == 0, renamed.stderr
    assert renamed.records("people") == [{"first_name": "A", "first_name_2": "B"}]


def test_streams_follow_the_files_setting_then_names(folder):
    for name in ("b.csv", "a.csv", "children.csv", "parents.csv"):
        write(folder, name, "id\n1\n")
    run = run_tap(folder, files=[{"path": "parents.csv"}, {"path": "children.csv"}])
    assert run.streams == ["parents", "children", "a", "b"]
    assert run_tap(folder).streams == ["a", "b", "children", "parents"]


def test_stream_name_override_and_collision(folder):
    write(folder, "Orders.csv", "id\n1\n")
    write(folder, "orders.CSV", "id\n2\n")
    clash = run_tap(folder)
    assert clash.returncode != 0 and "both make stream 'orders'" in clash.last_error_line
    run = run_tap(folder, files=[{"path": "orders.CSV", "stream": "orders_archive"}])
    assert run.returncode == 0, run.stderr
    assert run.streams == ["orders_archive", "orders"]
