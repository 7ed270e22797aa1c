"""Columns, types and keys come from the API: tables unlike the sample's, read with the anon key
(types from the rows) and with the service-role key (types from the description)."""

from __future__ import annotations

import decimal
import json

import pytest

from tests.conftest import batch_config, batch_files, expected_record, read_batch_file, run_tap, tap_config
from wiserock_sandbox import SANDBOX_SERVICE_KEY, Column, TableDef
from wiserock_sandbox.variants import EVENT, unlike_sample

TABLES = [{"name": "user"}, {"name": "note"}, {"name": "event", "key": ["tenant", "seq"], "parents": ["user"]}]
# The anon key and a login: types from the rows. The service-role key alone: from the description.
MODES = {"rows": {}, "description": {"api_key": SANDBOX_SERVICE_KEY, "email": "", "password": ""}}


def config(server, mode, **overrides):
    return tap_config(server, **{"tables": TABLES, "page_size": 7, "emit_activate_version_messages": True,
                                 **MODES[mode], **overrides})


def last_schema(run, stream):
    return [m for m in run.of_type("SCHEMA") if m["stream"] == stream][-1]


@pytest.fixture
def unlike(start_sandbox):
    return start_sandbox(tables=unlike_sample())


@pytest.mark.parametrize("mode", MODES)
def test_every_column_of_tables_unlike_the_sample_is_emitted_exactly(unlike, tmp_path, mode):
    run = run_tap(tmp_path, config(unlike, mode))
    assert run.returncode == 0, run.stderr
    for table in ("user", "note", "event"):
        rows = unlike.sandbox.rows(table)
        assert run.records(table) == [expected_record(row) for row in rows], table  # every column, in key order, exact
        assert list(last_schema(run, table)["schema"]["properties"]) == list(rows[0])  # nothing dropped or invented
    properties = last_schema(run, "event")["schema"]["properties"]
    types = {name: prop.get("format", prop["type"][0]) for name, prop in properties.items()}
    assert types == {"tenant": "string", "seq": "integer", "user_id": "integer", "amount": "number", "ratio": "number",
                     "due": "string", "extra": "object", "day": "date",
                     "local_time": "date-time"}
    user = last_schema(run, "user")["schema"]["properties"]
    assert user["activeflag"]["type"] == ["boolean", "null"] and user["signed_up_at"]["format"] == "date-time"
    assert user["tags"]["type"][0] == "array" and user["profile"]["type"][0] == "object"
    assert next(m["key_properties"] for m in run.of_type("SCHEMA") if m["stream"] == "event") == ["tenant", "seq"]
    assert last_schema(run, "note")["key_properties"] == ["id"]
    streams = list(dict.fromkeys(m["stream"] for m in run.messages if "stream" in m))
    assert streams == ["user", "note", "event"]


def test_rows_mode_widens_while_reading_and_types_date_times_last(unlike, tmp_path):
    """event's first page holds integer amounts, date-like dues and null extras; later pages hold
    decimals, `n/a` and objects. Each change is a SCHEMA message before the rows that need it;
    `day` and `local_time` are sent as text and typed in the last SCHEMA message."""
    run = run_tap(tmp_path, config(unlike, "rows"))
    assert run.returncode == 0, run.stderr
    schemas = [(i, m["schema"]["properties"]) for i, m in enumerate(run.messages)
               if m["type"] == "SCHEMA" and m["stream"] == "event"]
    first, final = schemas[0][1], schemas[-1][1]
    assert first["amount"]["type"][0] == "integer" and first["extra"] == {"type": ["string", "null"]}
    assert first["day"] == {"type": ["string", "null"]} and first["due"] == {"type": ["string", "null"]}
    assert final["amount"]["type"][0] == "number" and final["extra"]["type"][0] == "object"
    assert final["day"]["format"] == "date" and final["local_time"]["format"] == "date-time" and "format" not in final["due"]
    records = [(i, m["record"]) for i, m in enumerate(run.messages) if m["type"] == "RECORD" and m["stream"] == "event"]
    first_decimal = next(i for i, record in records if not isinstance(record["amount"], int))
    number_schema = next(i for i, props in schemas if props["amount"]["type"][0] == "number")
    assert number_schema < first_decimal
    activation = next(i for i, m in enumerate(run.messages) if m["type"] == "ACTIVATE_VERSION" and m["stream"] == "event")
    assert schemas[-1][0] < activation  # the final types come before the stream completes


@pytest.mark.parametrize("file_format", ["parquet", "jsonl"])
def test_batch_files_follow_a_widened_type(unlike, tmp_path, file_format):
    """A widening closes the open batch file: each file holds one type per column, as the SCHEMA
    message before its BATCH message says; the rows equal RECORD mode's."""
    records = run_tap(tmp_path, config(unlike, "rows"))
    batched = run_tap(tmp_path, config(unlike, "rows", batch_config=batch_config(tmp_path / "b", file_format, batch_size=20)))
    assert batched.returncode == 0, batched.stderr
    loaded = [row for path in batch_files(batched, "event") for row in read_batch_file(path, file_format, "none")]
    if file_format == "parquet":
        # Numbers as exact decimal text (integers as int64 in the files written before the
        # widening), JSON values as JSON text: compared as text.
        def as_text(row):
            return {name: value if value is None or name not in {"amount", "ratio", "extra"}
                    else json.dumps(value, default=str) if isinstance(value, dict) else str(value)
                    for name, value in row.items()}
        loaded = [{**row, "extra": row["extra"] and json.loads(row["extra"], parse_float=decimal.Decimal)} for row in loaded]
        assert [as_text(row) for row in loaded] == [as_text(record) for record in records.records("event")]
        assert {type(row["amount"]) for row in loaded} == {int, str}
    else:
        assert loaded == records.records("event")
    kinds = [m["type"] for m in batched.messages if m.get("stream") == "event"]
    assert kinds[0] == "SCHEMA" and kinds[-2:] == ["SCHEMA", "ACTIVATE_VERSION"] and "SCHEMA" in kinds[1:-2]


def test_keys_of_any_orderable_type_page_exactly(unlike, tmp_path):
    """uuid keys (PostgreSQL orders them by bytes), text keys in the database's collation (not
    Python's order) and a composite key whose text holds , . : ( ) quotes and backslashes: pages of
    7 rows, every row once, in the server's order; such keys are read as one range."""
    run = run_tap(tmp_path, config(unlike, "rows", parallel_requests=4))
    assert run.returncode == 0, run.stderr
    for table in ("note", "event"):
        assert run.records(table) == [expected_record(row) for row in unlike.sandbox.rows(table)]
    tenants = list(dict.fromkeys(record["tenant"] for record in run.records("event")))
    assert tenants != sorted(tenants)  # the collation's order, which Python's sort would not give
    assert unlike.sandbox.stats.max_reads_in_flight == 1


def test_a_table_without_a_usable_key_is_refused_naming_the_key_setting(start_sandbox, tmp_path):
    log = TableDef("log", (Column("at", "timestamp with time zone"), Column("line", "text")))
    server = start_sandbox(tables=[(log, [{"at": "2024-01-01T00:00:00+00:00", "line": "x"}])])
    for mode in MODES:
        run = run_tap(tmp_path, tap_config(server, tables=[{"name": "log"}], **MODES[mode]))
        assert run.returncode != 0 and "Traceback" not in run.stderr
        assert run.last_error_line.startswith("tap-wiserock-api: error: table 'log'"), run.stderr
        assert '"key"' in run.last_error_line and "tables setting" in run.last_error_line
        assert run.messages == []
    with_key = run_tap(tmp_path, tap_config(server, tables=[{"name": "log", "key": "at"}]))
    assert with_key.returncode == 0 and with_key.records("log") == [{"at": "2024-01-01T00:00:00+00:00", "line": "x"}]


def test_mixed_json_after_strings_fails_in_one_line_with_the_fix(start_sandbox, tmp_path):
    """Rows mode cannot know a jsonb column whose first page holds only strings: a later object
    cannot become exact (the text already sent is not JSON). The run fails before the stream
    completes and says which column_types makes it load."""
    table = TableDef("doc", (Column("id", "bigint", nullable=False, primary_key=True), Column("body", "jsonb")))
    rows = [{"id": n, "body": "text" if n < 10 else {"a": n}} for n in range(1, 20)]
    server = start_sandbox(tables=[(table, rows)])
    run = run_tap(tmp_path, tap_config(server, tables=[{"name": "doc"}], page_size=5, emit_activate_version_messages=True))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    line = run.last_error_line
    assert "table 'doc', row id 10, column body" in line and '"column_types": {"body": "object"}' in line
    assert run.of_type("ACTIVATE_VERSION") == []
    forced = run_tap(tmp_path, tap_config(server, tables=[{"name": "doc", "column_types": {"body": "object"}}], page_size=5))
    assert forced.returncode == 0, forced.stderr
    assert [record["body"] for record in forced.records("doc")] == [row["body"] for row in rows]


@pytest.mark.parametrize("change", ["add", "drop"])
def test_a_column_added_or_dropped_during_the_read_fails_the_stream(unlike, tmp_path, change):
    box = unlike.sandbox

    def alter(sandbox):
        if change == "add":
            sandbox.add_column("event", Column("late", "text"))
        else:
            sandbox.drop_column("event", "due")

    box.faults.on_request[8] = alter  # after the first pages and a few pages of user
    run = run_tap(tmp_path, config(unlike, "rows"))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.last_error_line.startswith("tap-wiserock-api: error: table 'event': its columns changed during the run")
    assert ("new late, gone none" if change == "add" else "new none, gone due") in run.last_error_line
    assert "event" not in [m["stream"] for m in run.of_type("ACTIVATE_VERSION")]


def test_a_catalog_that_no_longer_matches_the_source_fails_before_any_message(unlike, tmp_path):
    catalog = run_tap(tmp_path, config(unlike, "description"), "--discover").stdout
    (tmp_path / "catalog.json").write_text(catalog)
    unlike.sandbox.add_column("note", Column("mood", "text"))
    unlike.sandbox.drop_column("note", "pinned")
    run = run_tap(tmp_path, config(unlike, "description"), "--catalog", str(tmp_path / "catalog.json"))
    assert run.returncode != 0 and run.messages == []
    assert "table 'note': the catalog does not match the source: columns only in the source: mood; only in the " \
           "catalog: pinned" in run.last_error_line


def test_a_deselected_column_is_left_out_and_a_selected_one_kept(unlike, tmp_path):
    catalog = json.loads(run_tap(tmp_path, config(unlike, "rows"), "--discover").stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == ["properties", "profile"]:
                entry["metadata"]["selected"] = False
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    run = run_tap(tmp_path, config(unlike, "rows"), "--catalog", str(tmp_path / "catalog.json"))
    assert run.returncode == 0, run.stderr
    assert "profile" not in last_schema(run, "user")["schema"]["properties"]
    assert next(set(record) for record in run.records("user")) == set(unlike.sandbox.rows("user")[0]) - {"profile"}


def test_parents_come_first_from_foreign_keys_or_the_setting(unlike, tmp_path):
    listed = [{"name": "event", "key": ["tenant", "seq"]}, {"name": "note"}, {"name": "user"}]
    by_description = run_tap(tmp_path, config(unlike, "description", tables=listed))
    assert list(dict.fromkeys(m["stream"] for m in by_description.of_type("SCHEMA"))) == ["user", "event", "note"]
    by_rows = run_tap(tmp_path, config(unlike, "rows", tables=listed))  # no foreign keys known: listed order
    assert list(dict.fromkeys(m["stream"] for m in by_rows.of_type("SCHEMA"))) == ["event", "note", "user"]
    listed[0]["parents"] = ["user"]
    with_parents = run_tap(tmp_path, config(unlike, "rows", tables=listed))
    assert list(dict.fromkeys(m["stream"] for m in with_parents.of_type("SCHEMA"))) == ["note", "user", "event"]


def test_column_types_force_a_type_and_a_misfit_names_the_row(unlike, tmp_path):
    tables = [{"name": "event", "key": ["tenant", "seq"], "column_types": {"amount": "string", "due": "date"}}]
    run = run_tap(tmp_path, config(unlike, "rows", tables=tables))
    assert run.returncode != 0
    assert "table 'event', row (tenant, seq) ('a.b', 4)" not in run.last_error_line  # early rows fit
    assert "column due: 'n/a' is not an ISO 8601 date" in run.last_error_line
    tables[0]["column_types"] = {"amount": "string"}
    run = run_tap(tmp_path, config(unlike, "rows", tables=tables))
    assert run.returncode == 0, run.stderr
    assert {record["amount"] for record in run.records("event")} >= {"10", "0.1", "12345678901234567890.123"}


@pytest.mark.parametrize(("tables", "fragment"), [
    ([{"name": "note", "parents": ["usr"]}], "'note' names parents that are not in tables: 'usr'"),
    ([{"name": "note", "column_types": {"x": "money"}}], "'money' is not one of ['boolean', 'integer'"),
    ([{"name": "note", "column_types": {"nope": "string"}}], "column_types names columns it does not have: nope"),
    ([{"name": "user"}, {"name": "user"}], "'user' listed more than once"),
])
def test_a_bad_tables_setting_is_one_line(unlike, tmp_path, tables, fragment):
    run = run_tap(tmp_path, config(unlike, "rows", tables=tables))
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert fragment in run.stderr


def test_rls_hiding_a_table_that_had_rows_is_a_warning(unlike, tmp_path):
    """State remembers each table's rows at the last successful run (Meltano passes it back)."""
    first = run_tap(tmp_path, config(unlike, "rows"))
    state = first.of_type("STATE")[-1]["value"]
    assert state["bookmarks"]["note"]["rows"] == len(unlike.sandbox.rows("note"))
    (tmp_path / "state.json").write_text(json.dumps(state))
    unlike.sandbox.set_rls_without_policy("note")
    second = run_tap(tmp_path, config(unlike, "rows"), "--state", str(tmp_path / "state.json"))
    assert second.returncode == 0, second.stderr
    (warning,) = [line for line in second.stderr.splitlines() if "WARNING" in line and "'note'" in line]
    assert "returned no rows, but 90 at the last successful run" in warning and "Row Level Security" in warning
    # Its columns are remembered too: the stream completes, so the loader empties the staging table.
    assert [m["stream"] for m in second.of_type("ACTIVATE_VERSION")] == ["user", "note", "event"]
    service = run_tap(tmp_path, config(unlike, "description"), "--state", str(tmp_path / "state.json"))
    assert len(service.records("note")) == 90 and "Row Level Security" not in service.stderr


def test_an_empty_table_with_nothing_to_show_its_columns_is_left_alone(start_sandbox, tmp_path):
    server = start_sandbox(tables=[(EVENT, [])])
    run = run_tap(tmp_path, tap_config(server, tables=[{"name": "event", "key": ["tenant", "seq"]}],
                                       emit_activate_version_messages=True))
    assert run.returncode == 0, run.stderr
    assert run.of_type("SCHEMA") == [] and run.of_type("ACTIVATE_VERSION") == []
    assert "Table 'event' returned no rows and its columns cannot be known with this key" in run.stderr
