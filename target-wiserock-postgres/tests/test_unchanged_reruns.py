"""A rerun whose snapshot of a table is exactly what the last run committed, into a table nobody
wrote to since, is not merged; anything else (a changed value, another's write, DDL, a stream
sent again or widened during the run) is merged as before, to the exact snapshot."""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from target_wiserock_postgres.snapshots import SNAPSHOTS_TABLE
from tests.conftest import activate, error_line, load, record, run_cli, schema, snapshot

SKIPPED = "people: unchanged since the last run: not merged"
ROWS = [{"id": n, "name": f"person {n}", "score": n / 4, "joined": f"2024-01-{n:02d}T10:00:00Z"} for n in range(1, 21)]
COLUMNS = {"name": "string", "score": "number", "joined": "date-time"}


def people(rows=ROWS, **columns) -> list[dict]:
    return snapshot("people", rows, id="integer", **(columns or COLUMNS))


def expected(rows=ROWS) -> list[tuple]:
    return [(row["id"], row["name"]) for row in rows]


def physical(house) -> list[tuple]:
    """Each row's version: another transaction's write, even of the same values, changes them."""
    return house.rows("people", "id, xmin::text, ctid::text")


def rerun(house, caplog, messages: list[dict], **settings) -> bool:
    """Load `messages`; whether the table was left unmerged."""
    caplog.set_level(logging.INFO)
    caplog.clear()
    load(house, messages, **settings)
    return SKIPPED in caplog.text


def recorded(house) -> list[tuple]:
    return house.query(f"select table_name, digest, signature from {SNAPSHOTS_TABLE} order by 1")


def parquet_batch(house, name: str, rows: list[dict]) -> dict:
    path = house.folder / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return {"type": "BATCH", "stream": "people", "encoding": {"format": "parquet", "compression": "none"},
            "manifest": [path.resolve().as_uri()]}


@pytest.mark.parametrize("mode", ["RECORD", "BATCH"])
def test_an_unchanged_rerun_leaves_every_row_as_it_is(warehouse, caplog, mode):
    def messages() -> list[dict]:
        if mode == "RECORD":
            return people()
        rows = [{"id": n, "name": f"person {n}", "score": n / 4} for n in range(1, 21)]
        return [schema("people", id="integer", name="string", score="number"), parquet_batch(warehouse, "p.parquet", rows),
                activate("people")]

    assert not rerun(warehouse, caplog, messages())
    before = physical(warehouse)
    assert rerun(warehouse, caplog, messages())
    assert "people: 20 rows in" in caplog.text and "(0 inserted, 0 deleted)" in caplog.text
    assert physical(warehouse) == before
    assert rerun(warehouse, caplog, messages())
    assert physical(warehouse) == before and warehouse.rows("people", "id, name") == expected()


def test_a_changed_value_is_merged(warehouse, caplog):
    load(warehouse, people())
    changed = [*ROWS[:5], {**ROWS[5], "name": "someone else"}, *ROWS[6:]]
    assert not rerun(warehouse, caplog, people(changed))
    assert "1 inserted, 1 deleted" in caplog.text
    assert warehouse.rows("people", "id, name") == expected(changed)
    assert rerun(warehouse, caplog, people(changed))  # that snapshot was recorded in turn


@pytest.mark.parametrize("write", [
    "update people set name = 'edited' where id = 3",
    "update people set name = name where id = 3",  # same values: still a write, still merged
    "delete from people where id = 4",
    "insert into people (id, name) values (99, 'extra')",
    "truncate people",
    "copy people (id, name) from stdin",
    "merge into people p using (select 5 as id) n on p.id = n.id when matched then update set name = 'merged'",
])
def test_a_write_by_someone_else_makes_the_next_rerun_merge_back_to_the_snapshot(warehouse, caplog, write):
    load(warehouse, people())
    if write.startswith("copy"):
        with warehouse.connect() as connection, connection.cursor().copy(write) as copy:
            copy.write_row((98, "copied"))
    else:
        warehouse.query(write)
    assert recorded(warehouse) == []  # the guard removed the table's row with the write
    assert not rerun(warehouse, caplog, people())
    assert warehouse.rows("people", "id, name") == expected()
    assert warehouse.rows("people", "id, score") == [(row["id"], pytest.approx(row["score"])) for row in ROWS]
    assert rerun(warehouse, caplog, people())


def test_a_write_rolled_back_changes_nothing(warehouse, caplog):
    load(warehouse, people())
    with warehouse.connect() as connection:
        connection.execute("delete from people")
        connection.rollback()
    assert rerun(warehouse, caplog, people())
    assert warehouse.rows("people", "id, name") == expected()


@pytest.mark.parametrize("change", [
    "alter table people add column extra text default 'x'",
    "alter table people alter column name type varchar(40)",
    "alter table people alter column name type text using upper(name)",  # same type, every value rewritten
    "alter table people drop column score",
    "alter table people drop constraint people_pkey",
    "alter table people disable trigger _loader_snapshot_changed; update people set name = 'hidden' where id = 1; "
    "alter table people enable trigger _loader_snapshot_changed",
    "drop trigger _loader_snapshot_changed on people; update people set name = 'hidden' where id = 1",
    "alter table people rename to people_was; create table people (like people_was including all); "
    "insert into people select * from people_was; update people set name = 'hidden' where id = 1; drop table people_was",
    "create table people_child () inherits (people); insert into people_child (id, name) values (77, 'child')",
])
def test_ddl_by_someone_else_makes_the_next_rerun_merge(warehouse, caplog, change):
    load(warehouse, people())
    for statement in change.split("; "):
        warehouse.query(statement)
    assert not rerun(warehouse, caplog, people())
    assert warehouse.rows("people", "id, name, score", "1") == [(row["id"], row["name"], pytest.approx(row["score"]))
                                                               for row in ROWS]
    if "inherits" not in change:
        assert rerun(warehouse, caplog, people())


def test_a_new_column_type_with_the_same_text_is_merged(warehouse, caplog):
    """The COPY data of 5 as an integer and "5" as a string are the same bytes: the signature differs."""
    load(warehouse, snapshot("people", [{"id": 1, "code": 5}], id="integer", code="integer"))
    assert not rerun(warehouse, caplog, snapshot("people", [{"id": 1, "code": "5"}], id="integer", code="string"))
    assert warehouse.column_types("people")["code"] == "text" and warehouse.rows("people") == [(1, "5")]
    assert not rerun(warehouse, caplog, snapshot("people", [{"id": 1, "code": "5"}], (), id="integer", code="string"))
    assert rerun(warehouse, caplog, snapshot("people", [{"id": 1, "code": "5"}], (), id="integer", code="string"))


def test_a_failed_run_leaves_the_table_and_its_record_as_they_were(warehouse, caplog):
    load(warehouse, people())
    before, digest = physical(warehouse), recorded(warehouse)
    bad = [*people()[:-3], record("people", id=30, name="x", score="not a number"), activate("people")]
    assert "not a number" in error_line(run_cli(warehouse, bad))
    assert run_cli(warehouse, people()[:-1]).returncode != 0  # every row, but the stream never completes
    assert physical(warehouse) == before and recorded(warehouse) == digest
    assert rerun(warehouse, caplog, people())


def test_a_stream_sent_again_as_its_next_version_is_merged(warehouse, caplog):
    load(warehouse, people())
    first = [{**record("people", id=1, name="old version"), "version": 1}]
    again = [{**record("people", **row), "version": 2} for row in ROWS]
    messages = [schema("people", id="integer", **COLUMNS), *first, *again,
                {"type": "ACTIVATE_VERSION", "stream": "people", "version": 2}]
    assert not rerun(warehouse, caplog, messages)
    assert warehouse.rows("people", "id, name") == expected()
    assert not rerun(warehouse, caplog, messages)  # no digest was recorded for it


def test_a_stream_widened_during_the_run_is_merged(warehouse, caplog):
    rows = [{"id": n, "code": n * 10} for n in range(1, 6)]
    load(warehouse, snapshot("people", rows, id="integer", code="string"))
    widened = [schema("people", id="integer", code="integer"), *(record("people", **row) for row in rows[:3]),
               schema("people", id="integer", code="string"), *(record("people", **row) for row in rows[3:]),
               activate("people")]
    assert not rerun(warehouse, caplog, widened)
    assert warehouse.rows("people") == [(row["id"], str(row["code"])) for row in rows]
    assert warehouse.column_types("people")["code"] == "text"


def test_two_tables_are_each_compared_with_their_own_last_run(warehouse, caplog):
    notes = snapshot("notes", [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}], id="integer", text="string")
    load(warehouse, [*people(), *notes])
    caplog.set_level(logging.INFO)
    caplog.clear()
    load(warehouse, [*people(), *notes])
    assert SKIPPED in caplog.text and "notes: unchanged since the last run: not merged" in caplog.text
    changed = snapshot("notes", [{"id": 1, "text": "a"}, {"id": 2, "text": "c"}], id="integer", text="string")
    caplog.clear()
    load(warehouse, [*people(), *changed])
    assert SKIPPED in caplog.text and "notes: unchanged" not in caplog.text
    assert warehouse.rows("notes") == [(1, "a"), (2, "c")] and warehouse.rows("people", "id, name") == expected()
    assert [row[0] for row in recorded(warehouse)] == ["notes", "people"]


@pytest.mark.parametrize(("rights", "refusal"), [("", "permission denied for table people"),
                                                 (", trigger", "must be owner of table people")])
def test_a_table_the_loader_cannot_guard_is_merged_on_every_run(warehouse, caplog, rights, refusal):
    """The loader's role may write the table but does not own it: no trigger, no skip, no failure."""
    role = f"{warehouse.schema}_loader"
    warehouse.query(f"create role {role} login")
    try:
        warehouse.query(f"create schema {warehouse.schema}")
        warehouse.query("create table people (id bigint primary key, name text, score numeric, joined timestamptz)")
        warehouse.query(f"grant usage, create on schema {warehouse.schema} to {role}")
        warehouse.query(f"grant select, insert, update, delete, truncate{rights} on people to {role}")
        for _ in range(2):
            assert not rerun(warehouse, caplog, people(), user=role)
            assert f"people: no trigger can watch it for writes ({refusal}); it is merged on every run" in caplog.text
            assert warehouse.rows("people", "id, name") == expected()
    finally:
        warehouse.query(f"drop owned by {role}")
        warehouse.query(f"drop role {role}")


def test_a_stream_named_like_the_snapshots_table_is_refused(warehouse):
    result = run_cli(warehouse, snapshot(SNAPSHOTS_TABLE, [{"id": 1}], id="integer"))
    assert error_line(result).endswith(f"stream '{SNAPSHOTS_TABLE}': its table would be {SNAPSHOTS_TABLE}, where the "
                                       "loader records the snapshots of the tables it loads; rename the stream in the "
                                       "tap or a stream map")
