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
])
def test_column_names(header, expected):
    assert snake_name(header, 3) == expected


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
