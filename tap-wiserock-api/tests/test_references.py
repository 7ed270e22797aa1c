"""References (child column -> parent table and column): from the API's description with the
service-role key, from the `tables` entries' `references` with the anon key; they order the
tables and travel with the streams, in the catalog and in every SCHEMA message."""

from __future__ import annotations

import json

import pytest

from tap_wiserock_api.tables import FIELDS
from tap_wiserock_api.tap import TapWiseRockApi
from tests.conftest import run_tap, tap_config
from wiserock_sandbox import SANDBOX_SERVICE_KEY
from wiserock_sandbox.variants import PINNED_NOTE, unlike_sample

SERVICE_KEY = {"api_key": SANDBOX_SERVICE_KEY, "email": "", "password": ""}
ALIAS = {"*": {"__alias__": "'stg_' + __stream_name__"}}
# Children listed before their parent: only the references can put user first.
LISTED = [{"name": "pinned_note"}, {"name": "event", "key": ["tenant", "seq"]}, {"name": "note"}, {"name": "user"}]


def ref(column: str, parent: str, parent_column: str = "id") -> dict[str, str]:
    return {"property": column, "parent": parent, "parent_property": parent_column}


@pytest.fixture
def unlike(start_sandbox):
    return start_sandbox(tables=[*unlike_sample(), (PINNED_NOTE, None)])


def catalog_references(run) -> dict[str, list[dict]]:
    catalog = json.loads(run.stdout)
    return {entry["tap_stream_id"]: next(item["metadata"]["references"] for item in entry["metadata"]
                                         if item["breadcrumb"] == []) for entry in catalog["streams"]}


def schema_references(run) -> dict[str, list[dict]]:
    """Each output stream's references, as every one of its SCHEMA messages carries them."""
    found: dict[str, list[list[dict]]] = {}
    for message in run.of_type("SCHEMA"):
        found.setdefault(message["stream"], []).append(message["references"])
    assert all(len({str(sent) for sent in each}) == 1 for each in found.values()), found
    return {stream: each[0] for stream, each in found.items()}


def test_the_descriptions_foreign_keys_are_references_views_included(unlike, tmp_path):
    config = tap_config(unlike, tables=LISTED, stream_maps=ALIAS, **SERVICE_KEY)
    discovered = run_tap(tmp_path, config, "--discover")
    assert discovered.returncode == 0, discovered.stderr
    assert catalog_references(discovered) == {
        "user": [], "note": [ref("author_id", "user")], "event": [ref("user_id", "user")],
        "pinned_note": [ref("author_id", "user")]}  # the view passes note's foreign key through
    run = run_tap(tmp_path, config)
    assert run.returncode == 0, run.stderr
    # Parents first, and each parent named by the stream it is written under (the stream map's alias).
    assert list(dict.fromkeys(m["stream"] for m in run.of_type("SCHEMA"))) == ["stg_user", "stg_pinned_note",
                                                                                 "stg_event", "stg_note"]
    assert schema_references(run) == {"stg_user": [], "stg_note": [ref("author_id", "stg_user")],
                                      "stg_event": [ref("user_id", "stg_user")],
                                      "stg_pinned_note": [ref("author_id", "stg_user")]}


def test_declared_references_with_the_anon_key(unlike, tmp_path):
    """The anon key cannot read the description: `references` say it, and order the tables too."""
    tables = [{"name": "event", "key": ["tenant", "seq"], "references": {"user_id": "user.id"}},
              {"name": "note", "references": {"author_id": "user.id"}}, {"name": "user"}]
    without = run_tap(tmp_path, tap_config(unlike, tables=[{k: v for k, v in table.items() if k != "references"}
                                                           for table in tables]))
    assert schema_references(without) == {"event": [], "note": [], "user": []}
    run = run_tap(tmp_path, tap_config(unlike, tables=tables))
    assert run.returncode == 0, run.stderr
    assert list(dict.fromkeys(m["stream"] for m in run.of_type("SCHEMA"))) == ["user", "event", "note"]
    assert schema_references(run) == {"user": [], "event": [ref("user_id", "user")], "note": [ref("author_id", "user")]}
    assert catalog_references(run_tap(tmp_path, tap_config(unlike, tables=tables), "--discover")) == {
        "user": [], "event": [ref("user_id", "user")], "note": [ref("author_id", "user")]}


def test_a_declared_reference_wins_and_a_foreign_key_to_a_table_not_loaded_is_only_logged(unlike, tmp_path):
    """The view's author_id references the table user, which is not loaded here: a declaration
    points it at the view of users that is."""
    tables = [{"name": "pinned_note"}, {"name": "note", "references": {"author_id": "pinned_note.author_id"}}]
    run = run_tap(tmp_path, tap_config(unlike, tables=tables, **SERVICE_KEY))
    assert run.returncode == 0, run.stderr
    assert schema_references(run) == {"pinned_note": [], "note": [ref("author_id", "pinned_note", "author_id")]}
    assert "Table 'pinned_note': author_id -> user.id: that table is not in tables, so not checked" in run.stderr


def test_a_stream_map_that_removes_a_column_or_a_parent_removes_its_reference(unlike, tmp_path):
    tables = [{"name": "user"}, {"name": "note"}, {"name": "event", "key": ["tenant", "seq"]}]
    maps = {"note": {"author_id": None}, "user": {"__alias__": "people"}}
    run = run_tap(tmp_path, tap_config(unlike, tables=tables, stream_maps=maps, **SERVICE_KEY))
    assert run.returncode == 0, run.stderr
    assert schema_references(run) == {"people": [], "note": [], "event": [ref("user_id", "people")]}


@pytest.mark.parametrize(("tables", "fragment"), [
    ([{"name": "note", "references": {"author_id": "usr.id"}}],
     "tables entry 'note': references author_id -> usr.id, but 'usr' is not in tables (listed: 'note')"),
    ([{"name": "user"}, {"name": "note", "references": {"author": "user.id"}}],
     "tables entry 'note': references author -> user.id, but the table has no such column (its columns: id, author_id"),
    ([{"name": "user"}, {"name": "note", "references": {"author_id": "user.uid"}}],
     "tables entry 'note': references author_id -> user.uid, but table 'user' has no column 'uid' (its columns: id,"),
    ([{"name": "user"}, {"name": "note", "references": {"author_id": "user"}}],
     'tables entry \'note\': references must map each column to "table.column" of the table it references'),
    ([{"name": "note", "keys": ["id"]}],
     "tables entry 'note': unknown field 'keys' (the fields are: name, schema, key, column_types, parents, references)"),
])
def test_a_bad_reference_or_field_is_one_line_naming_the_setting(unlike, tmp_path, tables, fragment):
    run = run_tap(tmp_path, tap_config(unlike, tables=tables))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.last_error_line.startswith("tap-wiserock-api: error: ") and fragment in run.last_error_line


def test_the_fields_of_an_entry_are_the_settings_declared_ones():
    entry = TapWiseRockApi.config_jsonschema["properties"]["tables"]["items"]["properties"]
    assert tuple(entry) == FIELDS
