"""The relations a SCHEMA message's `references` carry are recorded in `_loader_relations`, in the
run's transaction: a committed run replaces its tables' relations, a failed run changes none."""

from __future__ import annotations

import threading
import time

from target_wiserock_postgres.names import short_name
from target_wiserock_postgres.relations import RELATIONS_TABLE, create
from tests.conftest import activate, error_line, load, record, run_cli, schema, snapshot


def referencing(message: dict, *references: tuple[str, str, str]) -> dict:
    return {**message, "references": [{"property": column, "parent": parent, "parent_property": parent_column}
                                      for column, parent, parent_column in references]}


def recorded(house) -> list[tuple]:
    return house.rows(RELATIONS_TABLE, "child_table, child_column, parent_table, parent_column", "1, 2, 3, 4")


LONG = "a_property_name_longer_than_sixty_three_bytes_which_postgresql_would_cut"


def people_and_notes(note_references=(("author_id", "people", "id"),), notes=({"id": 1, "author_id": 7},)) -> list:
    return [*snapshot("people", [{"id": 7}], id="integer"),
            referencing(schema("notes", id="integer", author_id="integer"), *note_references),
            *(record("notes", **row) for row in notes), activate("notes")]


def test_a_runs_relations_are_recorded_as_tables_and_columns(warehouse):
    load(warehouse, snapshot("people", [{"id": 7}], id="integer"))
    assert not warehouse.exists(RELATIONS_TABLE)  # no stream sent references: no table of its own
    messages = [*people_and_notes(),
                referencing(schema("long_names", ("id",), id="integer", **{LONG: "integer"}), (LONG, "people", "id")),
                activate("long_names")]
    load(warehouse, messages)
    assert recorded(warehouse) == [("long_names", short_name(LONG), "people", "id"), ("notes", "author_id", "people", "id")]
    assert short_name(LONG) != LONG and short_name(LONG) in warehouse.column_types("long_names")


def test_the_next_run_replaces_the_relations_of_its_own_tables_only(warehouse):
    load(warehouse, [*people_and_notes(), *snapshot("orders", [{"id": 1, "person": 7}], id="integer", person="integer")])
    load(warehouse, [*people_and_notes(note_references=(("id", "people", "id"),)),
                     referencing(schema("orders", id="integer", person="integer"), ("person", "people", "id")),
                     activate("orders")])
    assert recorded(warehouse) == [("notes", "id", "people", "id"), ("orders", "person", "people", "id")]
    load(warehouse, [*snapshot("notes", [{"id": 1, "author_id": 7}], id="integer", author_id="integer")])  # none sent
    assert recorded(warehouse) == [("orders", "person", "people", "id")]


def test_a_failed_run_records_nothing(warehouse):
    load(warehouse, people_and_notes())
    before = recorded(warehouse)
    result = run_cli(warehouse, people_and_notes(note_references=(("id", "people", "id"),))[:-1])  # notes never complete
    assert "did not complete" in error_line(result)
    assert recorded(warehouse) == before


def test_an_unreadable_reference_is_logged_and_the_load_goes_on(warehouse, caplog):
    messages = [*snapshot("people", [{"id": 7}], id="integer"),
                {**schema("notes", id="integer"), "references": "people.id"},
                record("notes", id=1), activate("notes"),
                referencing(schema("orders", id="integer"), ("gone", "people", "id")), activate("orders")]
    load(warehouse, messages)
    assert warehouse.rows("notes", "id") == [(1,)] and recorded(warehouse) == []
    assert "stream 'notes': its SCHEMA's references are not a list of {property, parent, parent_property}" in caplog.text
    assert "stream 'orders': a reference names property 'gone', which its SCHEMA lacks; not recorded" in caplog.text


def test_a_stream_named_like_the_relations_table_is_refused(warehouse):
    result = run_cli(warehouse, snapshot(RELATIONS_TABLE, [{"id": 1}], id="integer"))
    assert error_line(result).endswith(f"stream '{RELATIONS_TABLE}': its table would be {RELATIONS_TABLE}, where the "
                                       "loader records the relations of the tables it loads; rename the stream in the "
                                       "tap or a stream map")


def test_a_run_creating_the_table_while_another_does_waits_and_loads(warehouse):
    """Loads of one schema on two workers: the later CREATE waits for the other run's transaction,
    and is undone when that run committed the table."""
    load(warehouse, snapshot("seed", [{"id": 1}], id="integer"))  # the schema exists: only the table races
    errors: list[BaseException] = []

    def run() -> None:
        try:
            load(warehouse, people_and_notes())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with warehouse.connect() as other:  # the other run, between its CREATE and its COMMIT
        other.execute("select 1")  # its transaction is open: create() makes a savepoint in it, as in a load
        create(other, warehouse.schema)
        other.execute(f'insert into "{warehouse.schema}".{RELATIONS_TABLE} values (%s, %s, %s, %s)',
                      ("orders", "person", "seed", "id"))
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 60
        while not warehouse.query("select 1 from pg_stat_activity where wait_event_type = 'Lock' and query ilike %s",
                                  f"%{warehouse.schema}%{RELATIONS_TABLE}%"):
            assert time.monotonic() < deadline and thread.is_alive(), errors
            time.sleep(0.05)
        other.commit()
    thread.join(60)
    assert errors == []
    assert recorded(warehouse) == [("notes", "author_id", "people", "id"), ("orders", "person", "seed", "id")]
