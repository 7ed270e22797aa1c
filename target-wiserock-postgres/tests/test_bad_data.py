"""Contract 6: bad data ends the run with one line naming table, column or key and the value
(cut short), and nothing changes; NUL characters in text are removed and counted instead."""

from __future__ import annotations

import json

import pytest

from tests.conftest import activate, error_line, failure, load, record, run_cli, schema, snapshot

PREVIOUS = snapshot("orders", [{"id": 1, "total": 10, "day": "2024-01-01"}], id="integer", total="number", day="date")


def orders(*rows: dict) -> list:
    return [schema("orders", id="integer", total="number", day="date"), *(record("orders", **row) for row in rows),
            activate("orders")]


@pytest.mark.parametrize(("row", "expected"), [
    ('{"id": 3, "total": 1e999999}', 'table orders, column total: value "1E+999999": value overflows numeric format '
                                     "(record 2 of this run)"),
    ('{"id": 9223372036854775808, "total": 1}', 'table orders, column id: value "9223372036854775808" is out of range '
                                                "for type bigint (record 2 of this run)"),
    ('{"id": 3, "day": "not a date"}', 'table orders, column day: invalid input syntax for type date: "not a date"'),
])
def test_a_value_that_does_not_fit_is_named(warehouse, row, expected):
    load(warehouse, PREVIOUS)
    bad = f'{{"type": "RECORD", "stream": "orders", "record": {row}}}'
    assert expected in failure(warehouse, [*orders({"id": 2, "total": 1})[:2], bad, activate("orders")])
    assert warehouse.rows("orders", "id, total::int") == [(1, 10)]


def test_a_long_bad_value_is_cut_short(warehouse):
    line = failure(warehouse, orders({"id": 1, "day": "x" * 5000}))
    assert "table orders, column day" in line and "(5,000 characters)" in line
    assert len(line) < 400


@pytest.mark.parametrize("duplicates", [
    [{"id": 1, "total": 10, "day": "2024-01-01"}, {"id": 1, "total": 11}],  # one identical to the table's row
    [{"id": 1, "total": 10, "day": "2024-01-01"}] * 2,  # both identical to it
])
def test_a_duplicate_of_an_unchanged_row_is_refused(warehouse, duplicates):
    load(warehouse, PREVIOUS)
    message = failure(warehouse, orders({"id": 2, "total": 1}, *duplicates))
    assert message == "table orders: duplicate key (id)=(1) in this run's rows; nothing was changed"
    assert warehouse.rows("orders", "id, total::int") == [(1, 10)]


def test_a_duplicate_key_is_named(warehouse):
    load(warehouse, PREVIOUS)
    result = run_cli(warehouse, orders({"id": 1, "total": 1}, {"id": 7, "total": 2}, {"id": 7, "total": 3}))
    assert error_line(result).endswith("table orders: duplicate key (id)=(7) in this run's rows; nothing was changed")
    assert warehouse.rows("orders", "id, total::int") == [(1, 10)]


def test_a_record_without_its_key_is_named(warehouse):
    assert "table orders: a record has no value for column id, which is part of the key" in failure(
        warehouse, orders({"total": 1}))


@pytest.mark.parametrize("messages", [
    [record("orders", id=5)],
    [schema("orders", id="integer"), record("elsewhere", id=5), activate("orders")],
])
def test_a_record_of_an_unknown_stream_is_named(warehouse, messages):
    load(warehouse, PREVIOUS)
    assert "RECORD before its SCHEMA (unknown stream)" in failure(warehouse, messages)
    assert warehouse.rows("orders", "id") == [(1,)]


def test_a_line_that_is_not_json_is_named(warehouse):
    result = run_cli(warehouse, [schema("orders", id="integer"), '{"type": "RECORD", "stream": "orders", "rec'])
    assert "input line 2 is not valid JSON" in error_line(result)


def test_nul_characters_are_removed_and_counted_not_failed(warehouse):
    line = json.dumps(record("orders", id=1, name="a\x00b", doc={"k": "\x00\x00"}))
    assert "\\u0000" in line
    result = run_cli(warehouse, [schema("orders", id="integer", name="string", doc="object"), line, activate("orders")])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "orders: removed 3 NUL characters from text values" in result.stderr
    assert warehouse.rows("orders") == [(1, "ab", {"k": ""})]
