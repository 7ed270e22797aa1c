"""Column and stream naming rules."""

from __future__ import annotations

import pytest

from tap_wiserock_csv.naming import snake_name
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


def test_colliding_headers_are_an_error_naming_file_and_both_headers(folder):
    write(folder, "people.csv", "First Name,first_name\nA,B\n")
    run = run_tap(folder)
    assert run.returncode != 0
    assert "people.csv line 1" in run.last_error_line
    assert "'First Name'" in run.last_error_line and "'first_name'" in run.last_error_line
    assert "Traceback" not in run.stderr


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
