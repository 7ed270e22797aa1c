"""Relations from the source, through `meltano run` into PostgreSQL: tables unlike the sample's (a
`note` whose author is `author_id`, a composite-keyed child, a view), their relations from the
API's description with the service-role key and from the `references` setting with the anon key;
the loader records them with the tables, and the summary counts orphans for each."""

from __future__ import annotations

import json

from elt.report import NO_RELATIONS_RECORDED, RELATIONS_TABLE
from tests.conftest import meltano, pipeline_env
from wiserock_sandbox import SANDBOX_SERVICE_KEY

TABLES = [{"name": "pinned_note"}, {"name": "note"}, {"name": "event", "key": ["tenant", "seq"]}, {"name": "user"}]
REFERENCES = {"pinned_note": {"author_id": "user.id"}, "note": {"author_id": "user.id"}, "event": {"user_id": "user.id"}}
# (child table, column) -> the sandbox's (table, column); every parent is stg_wiserock_user.id.
RELATIONS = {("stg_wiserock_event", "user_id"): ("event", "user_id"),
             ("stg_wiserock_note", "author_id"): ("note", "author_id"),
             ("stg_wiserock_pinned_note", "author_id"): ("pinned_note", "author_id")}
SERVICE_KEY = {"API_KEY": SANDBOX_SERVICE_KEY, "API_EMAIL": "", "API_PASSWORD": ""}


def summary_orphans(result) -> dict[str, str]:
    """The summary's orphan lines: relation -> what follows it."""
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split("orphans: ", 1)[1] for line in (result.stdout + result.stderr).splitlines() if "  orphans: " in line]
    return dict(line.rsplit(": ", 1) if " -> " in line else (line, "") for line in lines)


def expected_orphans(server) -> dict[str, str]:
    users = {row["id"] for row in server.sandbox.rows("user")}
    return {f"{child}.{column} -> stg_wiserock_user.id": str(sum(row[source_column] not in users
                                                                  for row in server.sandbox.rows(source)))
            for (child, column), (source, source_column) in RELATIONS.items()}


def load(warehouse, server, tables, *tasks: str, environment: str = "dev", **keys: str):
    env = pipeline_env(warehouse, server, TAP_WISEROCK_API_TABLES=json.dumps(tables), **keys)
    return meltano("--environment", environment, "run", "tap-wiserock-api", *tasks, env=env)


def test_the_descriptions_foreign_keys_with_the_service_key(warehouse, unlike):
    first = summary_orphans(load(warehouse, unlike, TABLES, "target-postgres", "wiserock-report:summary", **SERVICE_KEY))
    assert first == expected_orphans(unlike) == dict.fromkeys(first, "0") and len(first) == 3
    assert warehouse.query(f"select child_table, child_column, parent_table, parent_column from {RELATIONS_TABLE} "
                           "order by 1") == [(*child, "stg_wiserock_user", "id") for child in RELATIONS]
    box = unlike.sandbox
    box.delete_rows("user", [row["id"] for row in box.rows("user")[::4]])
    second = summary_orphans(load(warehouse, unlike, TABLES, "target-postgres", "wiserock-report:summary",
                                  **SERVICE_KEY))
    assert second == expected_orphans(unlike) and all(count != "0" for count in second.values())
    # Counted in the staging tables themselves, independently of the report.
    assert warehouse.query("select count(*) from stg_wiserock_event e where not exists "
                           "(select 1 from stg_wiserock_user u where u.id = e.user_id)") == \
        [(int(second["stg_wiserock_event.user_id -> stg_wiserock_user.id"]),)]


def test_the_references_setting_with_the_anon_key(warehouse, unlike):
    box = unlike.sandbox
    box.delete_rows("user", [row["id"] for row in box.rows("user")[1::5]])
    without = summary_orphans(load(warehouse, unlike, TABLES, "target-postgres", "wiserock-report:summary"))
    assert without == {"none to count: no relations among these tables (README: Relations)": ""}
    declared = [{**table, "references": REFERENCES[table["name"]]} if table["name"] in REFERENCES else table
                for table in TABLES]
    found = summary_orphans(load(warehouse, unlike, declared, "target-postgres", "wiserock-report:summary",
                                 environment="standard-targets"))
    assert found == expected_orphans(unlike) and all(count != "0" for count in found.values())


def test_a_relation_whose_table_or_column_is_gone_is_one_line(warehouse, unlike):
    """Tables dropped or altered since their load (by hand): the summary says which is missing."""
    declared = [{"name": "note", "references": {"author_id": "user.id"}}, {"name": "user"},
                {"name": "event", "key": ["tenant", "seq"], "references": {"user_id": "user.id"}}]
    assert load(warehouse, unlike, declared, "target-postgres").returncode == 0
    warehouse.query("alter table stg_wiserock_event drop column user_id")
    warehouse.query("drop table stg_wiserock_user")
    result = meltano("run", "wiserock-report:summary", env=pipeline_env(warehouse, unlike))
    assert summary_orphans(result) == {
        "stg_wiserock_event.user_id -> stg_wiserock_user.id": "not checked (column stg_wiserock_event.user_id is missing)",
        "stg_wiserock_note.author_id -> stg_wiserock_user.id": "not checked (table stg_wiserock_user is missing)"}


def test_a_reference_the_source_does_not_have_fails_in_one_line_naming_the_setting(warehouse, unlike):
    declared = [{"name": "note", "references": {"writer_id": "user.id"}}, {"name": "user"}]
    result = load(warehouse, unlike, declared, "target-postgres")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "tap-wiserock-api: error: tables entry 'note': references writer_id -> user.id, but the table has no such " \
           "column (its columns: id, author_id, content, pinned, inserted_at)" in result.stderr
    assert warehouse.query("select to_regclass('stg_wiserock_note')") == [(None,)]


def test_with_the_stock_loader_the_summary_says_no_relations_were_recorded(warehouse, unlike):
    env = pipeline_env(warehouse, unlike)
    if str(warehouse.database.params["host"]).startswith("/"):  # it cannot take a socket directory as host
        params = warehouse.database.params
        env["TARGET_POSTGRES_MELTANOLABS_SQLALCHEMY_URL"] = (
            f"postgresql+psycopg://{params['user']}@/{params['dbname']}?host={params['host']}")
    declared = [{"name": "note", "references": {"author_id": "user.id"}}, {"name": "user"}]
    result = meltano("--environment", "standard-targets", "run", "tap-wiserock-api", "target-postgres-meltanolabs",
                     "wiserock-report:summary", env={**env, "TAP_WISEROCK_API_TABLES": json.dumps(declared)})
    assert summary_orphans(result) == {NO_RELATIONS_RECORDED: ""}  # it loaded, ignoring the references
    assert warehouse.count("stg_wiserock_note") == len(unlike.sandbox.rows("note"))
