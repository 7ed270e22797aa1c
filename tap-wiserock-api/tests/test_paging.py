"""Paging never loses or repeats a row, whatever the server's cap and the table's size."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_same_rows, run_tap, tap_config
from wiserock_sandbox import SANDBOX_SERVICE_KEY


def test_full_read_matches_the_source_and_logs_in_once(start_sandbox, tmp_path):
    server = start_sandbox()
    run = run_tap(tmp_path, tap_config(server))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("user"), server.sandbox.rows("user"))
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))
    assert server.sandbox.stats.logins == 1
    assert server.sandbox.stats.refreshes == 0


def test_parents_come_before_children_even_when_the_catalog_lists_them_reversed(start_sandbox, tmp_path):
    server = start_sandbox(users=20, notes=40)
    catalog = run_tap(tmp_path, tap_config(server), "--discover").stdout
    reversed_catalog = tmp_path / "catalog.json"
    parsed = json.loads(catalog)
    parsed["streams"].reverse()
    reversed_catalog.write_text(json.dumps(parsed))
    run = run_tap(tmp_path, tap_config(server), "--catalog", str(reversed_catalog))
    streams_in_order = list(dict.fromkeys(m["stream"] for m in run.of_type("SCHEMA")))
    assert streams_in_order == ["user", "note"]
    last_user = max(i for i, m in enumerate(run.messages) if m.get("stream") == "user")
    first_note = min(i for i, m in enumerate(run.messages) if m.get("stream") == "note")
    assert last_user < first_note


def test_server_cap_below_page_size(start_sandbox, tmp_path):
    server = start_sandbox(max_rows=70)
    run = run_tap(tmp_path, tap_config(server, page_size=1000))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("user"), server.sandbox.rows("user"))
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))


@pytest.mark.parametrize("page_size", [100, 300])
def test_row_count_an_exact_multiple_of_the_page_size(start_sandbox, tmp_path, page_size):
    server = start_sandbox(users=300, notes=600)
    run = run_tap(tmp_path, tap_config(server, page_size=page_size))
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("user"), server.sandbox.rows("user"))
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))


def test_empty_tables(start_sandbox, tmp_path):
    """With the service-role key the description names the columns of empty tables: each
    stream completes with no rows (its staging table is emptied)."""
    server = start_sandbox(users=0, notes=0)
    run = run_tap(tmp_path, tap_config(server, api_key=SANDBOX_SERVICE_KEY, email="", password="",
                                       emit_activate_version_messages=True))
    assert run.returncode == 0, run.stderr
    assert [m["stream"] for m in run.of_type("SCHEMA")] == ["user", "note"]
    assert [m["stream"] for m in run.of_type("ACTIVATE_VERSION")] == ["user", "note"]
    assert run.records("user") == [] and run.records("note") == []


def test_rows_deleted_and_inserted_while_paging(start_sandbox, tmp_path):
    """Deleting rows already read shifts every later row down by that many places:
    offset paging would skip as many rows as were deleted. Keyset paging skips none."""
    server = start_sandbox(users=500, notes=100)
    sandbox = server.sandbox
    original = sandbox.rows("user")
    already_read = [row["id"] for row in original[:50]]
    not_yet_read = [row["id"] for row in original[-10:]]
    inserted = {**original[-1], "id": original[-1]["id"] + 1000, "email": "late@wiserock.example"}

    def change_source(box):
        box.delete_rows("user", already_read + not_yet_read)
        box.insert_rows("user", [inserted])

    sandbox.faults.on_request[3] = change_source  # after two pages of 100 were read
    run = run_tap(tmp_path, tap_config(server, page_size=100))
    assert run.returncode == 0, run.stderr
    emitted = run.records("user")
    final_rows = sandbox.rows("user")
    read_before_delete = [row for row in original if row["id"] in already_read]
    assert_same_rows(emitted, final_rows + read_before_delete)
    assert inserted["id"] in {record["id"] for record in emitted}
    assert not set(not_yet_read) & {record["id"] for record in emitted}
