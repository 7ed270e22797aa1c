"""Tables outside `public`: a tables entry's `schema` (or the tap's `schema` setting) picks the
PostgREST schema with Accept-Profile, for the rows and for the description; the stream keeps the
table's name."""

from __future__ import annotations

import decimal

import pytest

from tests.conftest import expected_record, run_tap, tap_config
from wiserock_sandbox import SANDBOX_SERVICE_KEY, Column, TableDef

USER = TableDef("user", (Column("id", "bigint", nullable=False, primary_key=True), Column("email", "text")))
# `score` exists in both schemas under one name, with other columns and another key type.
PUBLIC_SCORE = TableDef("score", (Column("id", "bigint", nullable=False, primary_key=True), Column("label", "text")))
ANALYTICS_SCORE = TableDef("score", (Column("id", "uuid", nullable=False, primary_key=True),
                                     Column("user_id", "bigint", references="user.id"),
                                     Column("points", "numeric")), schema="analytics")
ANALYTICS_DAILY = TableDef("daily", (Column("day", "date", nullable=False, primary_key=True),
                                     Column("total", "bigint")), schema="analytics")
SCORES = [{"id": f"0000000{n}-0000-4000-8000-000000000000", "user_id": n % 3 + 1, "points": decimal.Decimal(f"{n}.5")}
          for n in range(1, 10)]
MODES = {"rows": {}, "description": {"api_key": SANDBOX_SERVICE_KEY, "email": "", "password": ""}}


@pytest.fixture
def schemas(start_sandbox):
    return start_sandbox(tables=[
        (USER, [{"id": n, "email": f"u{n}@example.com"} for n in range(1, 4)]),
        (PUBLIC_SCORE, [{"id": 1, "label": "the public one"}]),
        (ANALYTICS_SCORE, SCORES),
        (ANALYTICS_DAILY, [{"day": f"2024-01-{n:02d}", "total": n} for n in range(1, 6)]),
    ])


def exact(rows):
    return [expected_record(row) for row in rows]


@pytest.mark.parametrize("mode", MODES)
def test_an_entrys_schema_reads_that_schemas_table_under_its_own_name(schemas, tmp_path, mode):
    tables = [{"name": "score", "schema": "analytics"}, {"name": "user"}]
    run = run_tap(tmp_path, tap_config(schemas, tables=tables, page_size=2, **MODES[mode]))
    assert run.returncode == 0, run.stderr
    assert run.records("score") == exact(schemas.sandbox.rows("score", schema="analytics"))
    assert run.records("user") == exact(schemas.sandbox.rows("user"))
    streams = list(dict.fromkeys(m["stream"] for m in run.messages if "stream" in m))
    if mode == "description":  # the analytics description's foreign key puts user first
        assert streams == ["user", "score"]
        score = next(m for m in run.of_type("SCHEMA") if m["stream"] == "score")
        assert score["schema"]["properties"]["points"]["type"][0] == "number"


def test_the_tap_wide_schema_applies_where_an_entry_names_none(schemas, tmp_path):
    tables = [{"name": "daily"}, {"name": "score"}, {"name": "user", "schema": "public"}]
    run = run_tap(tmp_path, tap_config(schemas, tables=tables, schema="analytics", **MODES["description"]))
    assert run.returncode == 0, run.stderr
    assert run.records("daily") == exact(schemas.sandbox.rows("daily", schema="analytics"))
    assert run.records("score") == exact(schemas.sandbox.rows("score", schema="analytics"))
    assert run.records("user") == exact(schemas.sandbox.rows("user"))


@pytest.mark.parametrize("mode", MODES)
def test_a_schema_the_api_does_not_expose_is_one_line(schemas, tmp_path, mode):
    run = run_tap(tmp_path, tap_config(schemas, tables=[{"name": "daily", "schema": "private"}], **MODES[mode]))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.last_error_line.startswith("tap-wiserock-api: error: HTTP 406 PGRST106: The schema must be one of the "
                                          "following: public, analytics")
    assert "check the schema setting: 'private'" in run.last_error_line


def test_a_table_in_another_schema_than_the_entrys_is_not_found(schemas, tmp_path):
    run = run_tap(tmp_path, tap_config(schemas, tables=[{"name": "daily"}]))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "Could not find the table 'public.daily'" in run.last_error_line


def test_a_bad_schema_field_is_one_line(schemas, tmp_path):
    run = run_tap(tmp_path, tap_config(schemas, tables=[{"name": "daily", "schema": ""}]))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "tables entry 'daily': schema must be the name of a schema the API exposes" in run.last_error_line
