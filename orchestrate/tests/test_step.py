"""A load step in process (no daemon): retries for database blips only, one-line errors, and
what a machine without the database settings does."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import dagster as dg
import psycopg
from conftest import SERVE, pipeline_env, project_copy

from wiserock_dagster.definitions import build
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_SERVICE_KEY

API_TABLES = [dg.AssetKey("stg_wiserock_user"), dg.AssetKey("stg_wiserock_note")]
DATABASE_KEYS = ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SCHEMA")


def load_api(monkeypatch, project, env: dict[str, str]) -> dg.ExecuteInProcessResult:
    """The API load, as a step of the project's job runs it (the settings come from the environment)."""
    for key in DATABASE_KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in {**env, "MELTANO_PROJECT_ROOT": str(project)}.items():
        monkeypatch.setenv(key, value)
    job = build().get_repository_def().get_implicit_global_asset_job_def()
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=API_TABLES,
                                  raise_on_error=False)


def failure_descriptions(result: dg.ExecuteInProcessResult) -> list[str]:
    return [event.step_failure_data.user_failure_data.description for event in result.all_events
            if event.is_step_failure and event.step_failure_data.user_failure_data]


def test_a_database_blip_is_retried_after_a_delay(monkeypatch, tmp_path, warehouse, sandbox):
    project = project_copy(tmp_path / "project")
    env = pipeline_env(warehouse, sandbox)
    assert load_api(monkeypatch, project, env).success
    box = sandbox.sandbox
    box.delete_rows("note", [row["id"] for row in box.rows("note")[::7]])
    dropped = threading.Event()
    note_table = f'"{warehouse.schema}".stg_wiserock_note'

    def drop_the_loaders_connection_once() -> None:
        with psycopg.connect(**warehouse.database.params, autocommit=True) as watcher, \
                psycopg.connect(**warehouse.database.params) as locker:
            # The loader waits for this lock at its commit; then its connection is terminated,
            # as a server restart would (tests/test_operations.py does the same to wiserock-elt run).
            locker.execute(f"lock table {note_table} in exclusive mode")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not dropped.is_set():
                if watcher.execute("select pg_terminate_backend(pid) from pg_stat_activity where application_name = "
                                   "'target-wiserock-postgres' and wait_event_type = 'Lock' and query ilike %s",
                                   (f"%{warehouse.schema}%",)).fetchall():
                    dropped.set()
                time.sleep(0.05)
            locker.rollback()

    thread = threading.Thread(target=drop_the_loaders_connection_once, daemon=True)
    thread.start()
    result = load_api(monkeypatch, project, env)
    thread.join(timeout=5)
    assert dropped.is_set()
    assert result.success, failure_descriptions(result)
    restarts = [event for event in result.all_events if event.event_type_value == "STEP_RESTARTED"]
    assert len(restarts) == 1
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in box.rows("note")]


def test_a_load_error_is_one_line_and_not_retried(monkeypatch, tmp_path, warehouse, sandbox):
    sandbox.sandbox.faults.error_every, sandbox.sandbox.faults.error_status = 1, 404
    result = load_api(monkeypatch, project_copy(tmp_path / "project"), pipeline_env(warehouse, sandbox))
    assert not result.success
    (error,) = failure_descriptions(result)
    assert error.startswith("tap-wiserock-api: error: table 'user' not found: HTTP 404") and "\n" not in error
    assert not [event for event in result.all_events if event.event_type_value == "STEP_RESTARTED"]
    assert warehouse.query("select to_regclass('stg_wiserock_user')") == [(None,)]  # nothing was loaded


def test_a_machine_without_the_database_settings_fails_in_one_line(monkeypatch, tmp_path, sandbox):
    project = project_copy(tmp_path / "project")
    result = load_api(monkeypatch, project, {"API_URL": sandbox.url, "API_KEY": "k", "API_EMAIL": "e", "API_PASSWORD": "p"})
    (error,) = failure_descriptions(result)
    assert error.startswith("DB_HOST, DB_NAME, DB_SCHEMA not set on ")
    assert not (project / ".pgdata").exists()  # no private embedded database
    # A Celery worker started without them refuses to start at all.
    worker_env = {key: value for key, value in os.environ.items() if key not in DATABASE_KEYS}
    worker = subprocess.run([*SERVE, "worker"], env={**worker_env, "MELTANO_PROJECT_ROOT": str(project)},
                            capture_output=True, text=True, timeout=60, check=False)
    assert worker.returncode == 1
    assert worker.stderr.strip() == (
        "wiserock-orchestrate: error: DB_HOST, DB_NAME, DB_SCHEMA, DAGSTER_CELERY_BROKER_URL not set (environment or "
        ".env): a worker needs the staging database and the broker the scheduler uses; it starts no database of its own")
    assert not (project / ".pgdata").exists()


def test_a_table_whose_file_is_gone_since_the_code_loaded_is_left_unmaterialized(monkeypatch, tmp_path, warehouse):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("Stores.csv", "Regions.csv"):
        (data / name).write_text("id,name\n1,a\n2,b\n", encoding="utf-8")
    project = project_copy(tmp_path / "project", no_files_entries, data=data)
    for key, value in {**warehouse.server.env, "DB_SCHEMA": warehouse.schema, "MELTANO_PROJECT_ROOT": str(project)}.items():
        monkeypatch.setenv(key, value)
    job = build().get_repository_def().get_implicit_global_asset_job_def()
    (data / "Regions.csv").unlink()  # after the code location read the folder
    csv_tables = [dg.AssetKey("stg_wiserock_csv_stores"), dg.AssetKey("stg_wiserock_csv_regions")]
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=csv_tables,
                                    raise_on_error=False)
    assert result.success, failure_descriptions(result)
    assert [event.asset_key.to_user_string() for event in result.get_asset_materialization_events()] == \
        ["stg_wiserock_csv_stores"]
    assert any("stg_wiserock_csv_regions: not written by this load" in (event.message or "") for event in result.all_events)
    assert warehouse.count("stg_wiserock_csv_stores") == 2
    (check,) = [event.asset_check_evaluation_data for event in result.all_events
                if event.event_type_value == "ASSET_CHECK_EVALUATION"
                and event.asset_check_evaluation_data.asset_key.path == ["stg_wiserock_csv_regions"]]
    assert not check.passed  # its check says so, too


def no_files_entries(manifest: dict) -> None:
    for plugin in manifest["plugins"]["extractors"]:
        if plugin["name"] == "tap-wiserock-csv":
            plugin["config"]["files"] = []


def test_the_orphan_checks_count_what_the_load_recorded_and_say_why_not(monkeypatch, tmp_path, warehouse, unlike):
    """Tables unlike the sample's, their relations from the API's description (service-role key):
    one check per relation on the child, 0 orphans, then some; a run whose tap no longer reports a
    relation (the anon key, no references) leaves its check unchecked, saying why."""
    tables = [{"name": "user"}, {"name": "note"}, {"name": "event", "key": ["tenant", "seq"]}, {"name": "pinned_note"}]
    assets = [dg.AssetKey(f"stg_wiserock_{table['name']}") for table in tables]
    project = project_copy(tmp_path / "project")
    env = {**warehouse.server.env, "DB_SCHEMA": warehouse.schema, "MELTANO_PROJECT_ROOT": str(project),
           "API_URL": unlike.url, "API_KEY": SANDBOX_SERVICE_KEY, "API_EMAIL": "", "API_PASSWORD": "",
           "TAP_WISEROCK_API_TABLES": json.dumps(tables)}
    for key in DATABASE_KEYS:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    job = build().get_repository_def().get_implicit_global_asset_job_def()

    def checks() -> dict[tuple[str, str], tuple[bool, object]]:
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=assets,
                                        raise_on_error=False)
        assert result.success, failure_descriptions(result)
        return {(check.asset_key.to_user_string(), check.check_name):
                (check.passed, check.metadata["orphans"].value if "orphans" in check.metadata else check.description)
                for check in result.get_asset_check_evaluations() if check.check_name != "primary_key"}

    relations = {("stg_wiserock_note", "no_orphan_author_id"): ("note", "author_id"),
                 ("stg_wiserock_event", "no_orphan_user_id"): ("event", "user_id"),
                 ("stg_wiserock_pinned_note", "no_orphan_author_id"): ("pinned_note", "author_id")}
    assert checks() == dict.fromkeys(relations, (True, 0))
    box = unlike.sandbox
    box.delete_rows("user", [row["id"] for row in box.rows("user")[::3]])
    users = {row["id"] for row in box.rows("user")}
    orphans = {check: sum(row[column] not in users for row in box.rows(table))
               for check, (table, column) in relations.items()}
    assert all(orphans.values())
    assert checks() == {check: (False, count) for check, count in orphans.items()}
    # The same code location; the tap of this run cannot read the API's foreign keys.
    monkeypatch.setenv("API_KEY", SANDBOX_API_KEY)
    monkeypatch.setenv("API_EMAIL", SANDBOX_EMAIL)
    monkeypatch.setenv("API_PASSWORD", SANDBOX_PASSWORD)
    assert checks() == dict.fromkeys(relations, (False, (
        "not checked: this load did not report this relation (its source or settings changed since the code "
        "location loaded: reload it)")))
