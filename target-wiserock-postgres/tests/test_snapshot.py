"""Contract 1: after a successful run each table holds exactly that run's rows of its stream."""

from __future__ import annotations

import decimal
import logging
import random
import time

import pytest

from target_wiserock_postgres import tables
from tests.conftest import activate, finish, load, record, schema, send, snapshot, start, wait_for_copy

COLUMNS = {"id": "integer", "name": "string", "amount": "number", "tags": "array"}


def people(*rows: tuple) -> list[dict]:
    return [dict(zip(("id", "name", "amount", "tags"), row, strict=True)) for row in rows]


def test_a_run_replaces_the_previous_snapshot(warehouse):
    load(warehouse, snapshot("people", people((1, "Ann", 1.5, ["a"]), (2, "Bob", 2, None), (3, "Cy", None, [])), **COLUMNS))
    load(warehouse, snapshot("people", people((2, "Bob", 2, None), (3, "Cyd", None, []), (4, "Di", 4, [1])), **COLUMNS))
    assert warehouse.rows("people") == [
        (2, "Bob", decimal.Decimal(2), None), (3, "Cyd", None, []), (4, "Di", decimal.Decimal(4), [1])]


def test_an_empty_snapshot_empties_the_table(warehouse):
    load(warehouse, snapshot("people", people((1, "Ann", 1, None)), **COLUMNS))
    load(warehouse, snapshot("people", [], **COLUMNS))
    assert warehouse.rows("people") == []


def test_changes_are_exact(warehouse):
    """1.10 and 1.1 are equal numbers but different values (in numeric and in jsonb); NULL to a
    value and back are changes."""
    first = '{"type": "RECORD", "stream": "people", "record": {"id": 1, "name": "a", "amount": 1.10, "tags": [1.10]}}'
    load(warehouse, [schema("people", **COLUMNS), first, *(record("people", **row) for row in people(
        (2, None, None, None), (3, "c", 3, None), (4, "d", 4, [1.5]))), activate("people")])
    assert warehouse.rows("people", "id, amount::text, tags::text")[0] == (1, "1.10", "[1.10]")
    load(warehouse, snapshot("people", people((1, "a", 1.1, [1.10]), (2, "b", None, None), (3, None, 3, None),
                                              (4, "d", 4, [1.50])), **COLUMNS))
    assert warehouse.rows("people", "id, name, amount::text, tags::text") == [
        (1, "a", "1.1", "[1.1]"), (2, "b", None, None), (3, None, "3", None), (4, "d", "4", "[1.5]")]


def test_a_number_key_written_with_another_scale_is_a_change(warehouse):
    """1.10 and 1.1 are one key to the primary key, but the new snapshot writes 1.1."""
    load(warehouse, ['{"type": "SCHEMA", "stream": "k", "schema": {"properties": {"code": {"type": "number"}, '
                     '"v": {"type": "string"}}}, "key_properties": ["code"]}',
                     '{"type": "RECORD", "stream": "k", "record": {"code": 1.10, "v": "a"}}', activate("k")])
    load(warehouse, ['{"type": "SCHEMA", "stream": "k", "schema": {"properties": {"code": {"type": "number"}, '
                     '"v": {"type": "string"}}}, "key_properties": ["code"]}',
                     '{"type": "RECORD", "stream": "k", "record": {"code": 1.1, "v": "a"}}', activate("k")])
    assert warehouse.rows("k", "code::text, v") == [("1.1", "a")]


def test_unchanged_rows_are_not_rewritten(warehouse):
    """The diff by key leaves identical rows where they are (same physical row), changes the rest."""
    load(warehouse, snapshot("people", people((1, "a", 1, None), (2, "b", 2, None)), **COLUMNS))
    before = dict(warehouse.query("select id, ctid::text from people"))
    load(warehouse, snapshot("people", people((1, "a", 1, None), (2, "B", 2, None)), **COLUMNS))
    after = dict(warehouse.query("select id, ctid::text from people"))
    assert after[1] == before[1]
    assert after[2] != before[2]
    assert warehouse.rows("people", "id, name") == [(1, "a"), (2, "B")]


def test_a_table_without_a_key_is_replaced_whole(warehouse):
    load(warehouse, snapshot("events", [{"kind": "a"}, {"kind": "a"}, {"kind": "b"}], keys=(), kind="string"))
    load(warehouse, snapshot("events", [{"kind": "a"}, {"kind": "c"}], keys=(), kind="string"))
    assert warehouse.rows("events") == [("a",), ("c",)]


def test_each_stream_gets_its_own_snapshot(warehouse):
    load(warehouse, [*snapshot("a", [{"id": 1}], id="integer"), *snapshot("b", [{"id": 7}, {"id": 8}], id="integer")])
    load(warehouse, [*snapshot("a", [{"id": 2}], id="integer"), *snapshot("b", [{"id": 8}], id="integer")])
    assert (warehouse.rows("a"), warehouse.rows("b")) == ([(2,)], [(8,)])


@pytest.mark.parametrize("changed_share", [0.1, 0.9])
def test_large_snapshots_few_or_most_rows_changed(warehouse, changed_share):
    """Past SAMPLE_FROM_ROWS the merge estimates the changed share (diff, or replace all): same result."""
    count = tables.SAMPLE_FROM_ROWS + 5000
    load(warehouse, snapshot("t", [{"id": n, "v": "old"} for n in range(count)], id="integer", v="string"))
    cut = int(count * changed_share)
    new = [{"id": n, "v": "new" if n <= cut else "old"} for n in range(1, count + 1)]
    load(warehouse, snapshot("t", new, id="integer", v="string"))
    assert warehouse.rows("t", "count(*), min(id), max(id), count(*) filter (where v = 'new')", "1") == [
        (count, 1, count, cut)]


@pytest.mark.parametrize("order", ["key order", "shuffled"])
def test_the_diff_is_exact_whichever_way_it_joins(warehouse, caplog, order):
    """Rows in key order in both tables are compared by a merge join over the two key indexes;
    others by a hash join. Either way: scale-only changes of numbers (1.10 to 1.1), NULL to a
    value and back, rows gone and rows new, and unchanged rows left where they are."""
    ids = list(range(1, 601))
    if order == "shuffled":
        random.Random(5).shuffle(ids)

    def rows(changed: bool) -> list[str]:
        lines = []
        for n in ids:
            if changed and n % 50 == 7:
                continue  # gone
            amount = "1.10" if n % 3 else "null"
            if changed and n % 10 == 1:
                amount = "1.1" if n % 3 else "2"
            lines.append(f'{{"type": "RECORD", "stream": "t", "record": {{"id": {n}, "name": "n{n}", "amount": {amount}}}}}')
        if changed:
            lines += [f'{{"type": "RECORD", "stream": "t", "record": {{"id": {n}, "name": "new", "amount": 3}}}}'
                      for n in (0, 700)]
        return lines

    columns = {"id": "integer", "name": "string", "amount": "number"}
    load(warehouse, [schema("t", **columns), *rows(changed=False), activate("t")])
    before = dict(warehouse.query("select id, ctid::text from t"))
    caplog.clear()
    caplog.set_level(logging.INFO)
    load(warehouse, [schema("t", **columns), *rows(changed=True), activate("t")])
    assert ("merge join" in caplog.text) == (order == "key order")
    expected = {n: ("n" + str(n), ("1.1" if n % 3 else "2") if n % 10 == 1 else ("1.10" if n % 3 else None))
                for n in range(1, 601) if n % 50 != 7} | {0: ("new", "3"), 700: ("new", "3")}
    assert {id_: (name, amount) for id_, name, amount in warehouse.rows("t", "id, name, amount::text")} == expected
    after = dict(warehouse.query("select id, ctid::text from t"))
    assert sorted(n for n in after if n in before and after[n] == before[n]) == \
        sorted(n for n in range(1, 601) if n % 50 != 7 and n % 10 != 1)


def test_two_runs_into_a_new_schema_at_once_both_load(warehouse):
    """Two loads (other streams, e.g. on two workers) create the missing schema at the same moment."""
    first = start(warehouse)
    send(first, [schema("alpha", id="integer"), *(record("alpha", id=n) for n in range(5000))])
    wait_for_copy(warehouse)  # its transaction has created the schema, not yet committed
    second = start(warehouse)
    send(second, snapshot("beta", [{"id": 1}], id="integer"))
    deadline = time.monotonic() + 30
    while not warehouse.query("select 1 from pg_stat_activity where application_name = %s and query ilike 'create schema%%' "
                              "and wait_event_type = 'Lock'", warehouse.application_name):
        assert time.monotonic() < deadline, "the second run never waited for the first one's schema"
        time.sleep(0.05)
    send(first, [activate("alpha")])
    assert finish(first).returncode == 0
    result = finish(second)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(warehouse.rows("alpha")) == 5000
    assert warehouse.rows("beta") == [(1,)]
