"""Contract 4: tables and the schema follow the SCHEMA messages; refused changes change nothing."""

from __future__ import annotations

import datetime as dt
import decimal
import json

from tests.conftest import error_line, load, record, run_cli, schema, snapshot

UTC = dt.timezone.utc
ALL_TYPES = {
    "id": "integer", "amount": "number", "flag": "boolean", "day": "date", "at": "date-time", "name": "string",
    "meta": "object", "tags": "array", "mixed": {"type": ["string", "integer", "null"]},
    "loose": {"anyOf": [{"type": "object"}, {"type": "string"}]}, "anything": {},
}


def test_schema_and_table_are_created_with_the_types(warehouse, monkeypatch):
    monkeypatch.setenv("PGTZ", "Asia/Kolkata")  # a server or client whose default zone is not UTC
    row = {"id": 2**62, "amount": "AMOUNT", "flag": True, "day": "2024-02-29",
           "at": "2024-03-01T12:00:00+02:00", "name": "", "meta": {"a": [1, None]}, "tags": ["x"], "mixed": 7,
           "loose": "text", "anything": 1.5}
    messages = snapshot("everything", [row, {"id": 1, "at": "2024-03-01T12:00:00"}], **ALL_TYPES)
    # A JSON number with more digits than a float holds, written as the tap writes it.
    messages[1] = json.dumps(messages[1]).replace('"AMOUNT"', "12345678901234567890.123456789")
    load(warehouse, messages)
    assert warehouse.column_types("everything") == {
        "id": "bigint", "amount": "numeric", "flag": "boolean", "day": "date", "at": "timestamp with time zone",
        "name": "text", "meta": "jsonb", "tags": "jsonb", "mixed": "text", "loose": "jsonb", "anything": "jsonb"}
    assert warehouse.query("select a.attname, a.attnotnull from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
                           "and a.attnum = any(i.indkey) where i.indrelid = 'everything'::regclass and i.indisprimary") \
        == [("id", True)]
    naive, full = warehouse.rows("everything")
    assert full == (2**62, decimal.Decimal("12345678901234567890.123456789"), True, dt.date(2024, 2, 29),
                    dt.datetime(2024, 3, 1, 10, tzinfo=UTC), "", {"a": [1, None]}, ["x"], "7", "text", 1.5)
    assert naive[4] == dt.datetime(2024, 3, 1, 12, tzinfo=UTC)  # no offset: the UTC the taps emit


def test_a_new_column_is_added_and_a_gone_one_stays_null(warehouse):
    load(warehouse, snapshot("t", [{"id": 1, "old": "x"}], id="integer", old="string"))
    load(warehouse, snapshot("t", [{"id": 1, "new": 5}], id="integer", new="integer"))
    assert warehouse.column_types("t") == {"id": "bigint", "old": "text", "new": "bigint"}
    assert warehouse.rows("t") == [(1, None, 5)]


def test_a_changed_type_is_applied(warehouse):
    load(warehouse, snapshot("t", [{"id": 1, "code": 42}], id="integer", code="integer"))
    load(warehouse, snapshot("t", [{"id": 1, "code": "0042"}], id="integer", code="string"))
    assert warehouse.column_types("t")["code"] == "text"
    assert warehouse.rows("t") == [(1, "0042")]


def test_a_changed_key_becomes_the_primary_key(warehouse):
    load(warehouse, snapshot("t", [{"id": 1, "code": "a"}], id="integer", code="string"))
    load(warehouse, snapshot("t", [{"id": 1, "code": "a"}, {"id": 1, "code": "b"}], keys=("code",),
                             id="integer", code="string"))
    assert warehouse.query("select pg_get_constraintdef(oid) from pg_constraint where conrelid = 't'::regclass "
                           "and contype = 'p'") == [("PRIMARY KEY (code)",)]
    assert warehouse.rows("t", order="code") == [(1, "a"), (1, "b")]


def test_a_view_that_blocks_a_type_change_is_named_and_nothing_changes(warehouse):
    load(warehouse, [*snapshot("t", [{"id": 1, "code": 42}], id="integer", code="integer"),
                     *snapshot("other", [{"id": 1}], id="integer")])
    warehouse.query("create view t_codes as select code from t")
    result = run_cli(warehouse, [*snapshot("other", [{"id": 2}], id="integer"),
                                 *snapshot("t", [{"id": 2, "code": "x"}], id="integer", code="string")])
    line = error_line(result)
    assert "table t, column code" in line and f"view {warehouse.schema}.t_codes" in line
    assert warehouse.column_types("t")["code"] == "bigint"
    assert (warehouse.rows("t"), warehouse.rows("other")) == ([(1, 42)], [(1,)])


def test_a_schema_change_within_a_run_keeps_the_earlier_rows(warehouse):
    load(warehouse, [schema("t", id="integer", a="integer"), record("t", id=1, a=1),
                     schema("t", id="integer", a="string", b="boolean"), record("t", id=2, a="two", b=True),
                     {"type": "ACTIVATE_VERSION", "stream": "t", "version": 1}])
    assert warehouse.rows("t") == [(1, "1", None), (2, "two", True)]

