"""The code location against meltano.yml: jobs, schedules, assets, checks, and one line per thing
Dagster cannot run. Meltano's own CLI (in the test only) says what the jobs and schedules are."""

from __future__ import annotations

import itertools
import json
import re
import subprocess

import dagster as dg
import pytest
from conftest import project_copy

from elt.settings import PROJECT_DIR
from wiserock_dagster.definitions import build
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_SERVICE_KEY

MELTANO = PROJECT_DIR / ".venv" / "bin" / "meltano"
# What the code location says when it cannot ask the API for its foreign keys (here: no API settings).
NO_API = ("wiserock-dagster: tap-wiserock-api: its discovery failed ('api_url' is a required property; "
          "'api_key' is a required property); the relations of its tables come from its tables setting only, until the "
          "code location is reloaded")


def meltano_json(project, *args: str) -> dict:
    result = subprocess.run([str(MELTANO), *args, "--format=json"], cwd=project, capture_output=True, text=True,
                            check=True, timeout=120)
    return json.loads(result.stdout)


def dagster_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


def load_steps(tasks: str | list) -> list[str]:
    """Meltano's tasks as the job's steps: one per extractor-loader pair; the report's tasks need none."""
    tasks = [tasks] if isinstance(tasks, str) else tasks
    words = " ".join(" ".join(task) if isinstance(task, list) else task for task in tasks).split()
    return [dagster_name(f"{extractor}_to_{loader}") for extractor, loader in itertools.pairwise(words)
            if extractor.startswith("tap-") and loader.startswith("target-")]


def repository(project, **env: str) -> dg.RepositoryDefinition:
    return build({"MELTANO_PROJECT_ROOT": str(project), **env}).get_repository_def()


def more_jobs(manifest: dict) -> None:
    manifest["jobs"] += [{"name": "api-only", "tasks": "tap-wiserock-api target-postgres"},
                         {"name": "csv.only", "tasks": [["wiserock-report:snapshot", "tap-wiserock-csv target-postgres"]]}]
    manifest["schedules"] += [{"name": "api-hourly", "interval": "@hourly", "job": "api-only"},
                              {"name": "csv every 5 minutes", "interval": "*/5 * * * *", "job": "csv.only"}]


@pytest.mark.parametrize("edit", [None, more_jobs], ids=["this project", "more jobs and schedules"])
def test_every_meltano_job_and_schedule_is_dagsters(tmp_path, edit):
    project = PROJECT_DIR if edit is None else project_copy(tmp_path / "project", edit)
    repo = repository(project, SCHEDULE_TIMEZONE="Europe/Paris")
    jobs = meltano_json(project, "job", "list")["jobs"]
    assert {job.name for job in repo.get_all_jobs() if not job.name.startswith("__")} == \
        {dagster_name(job["job_name"]) for job in jobs}
    for job in jobs:
        dagster_job = repo.get_job(dagster_name(job["job_name"]))
        assert dagster_job.tags["meltano/job"] == job["job_name"]  # one run at a time per Meltano job
        assert sorted(node.name for node in dagster_job.graph.node_defs) == sorted(load_steps(job["tasks"]))
    schedules = meltano_json(project, "schedule", "list")["schedules"]["job"]
    assert {schedule.name: (schedule.job_name, schedule.cron_schedule) for schedule in repo.schedule_defs} == {
        dagster_name(schedule["name"]): (dagster_name(schedule["job"]["name"]), schedule["cron_interval"])
        for schedule in schedules}
    for schedule in repo.schedule_defs:
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING  # declared, so meant to run
        assert schedule.execution_timezone == "Europe/Paris"


def test_the_staging_tables_are_assets_grouped_by_source_parents_upstream():
    repo = repository(PROJECT_DIR)
    graph = repo.asset_graph
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {"stg_wiserock_user": "tap_wiserock_api", "stg_wiserock_note": "tap_wiserock_api",
                      "stg_wiserock_csv_customers": "tap_wiserock_csv", "stg_wiserock_csv_orders": "tap_wiserock_csv",
                      "stg_wiserock_csv_order_items": "tap_wiserock_csv"}
    parents = {key.to_user_string(): sorted(parent.to_user_string() for parent in graph.get(key).parent_keys)
               for key in graph.get_all_asset_keys()}
    assert parents["stg_wiserock_note"] == ["stg_wiserock_user"]
    assert parents["stg_wiserock_csv_orders"] == ["stg_wiserock_csv_customers"]
    assert parents["stg_wiserock_csv_order_items"] == ["stg_wiserock_csv_orders"]
    checks = sorted((key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys)
    assert checks == sorted([*((table, "primary_key") for table in groups),
                             ("stg_wiserock_note", "no_orphan_user_id"),
                             ("stg_wiserock_csv_orders", "no_orphan_customer_id"),
                             ("stg_wiserock_csv_order_items", "no_orphan_order_id")])


def other_sources(manifest: dict) -> None:
    """Other files, names, keys and tables than the sample's."""
    for plugin in manifest["plugins"]["extractors"]:
        if plugin["name"] == "tap-wiserock-csv":
            plugin["config"]["files"] = [{"path": "Kunden Liste.csv", "stream": "clients", "keys": ["kunden_nr"]},
                                         {"path": "Sales Report.csv", "references": {"client": "clients.kunden_nr"}}]
        if plugin["name"] == "tap-wiserock-api":
            plugin["config"]["tables"] = [{"name": "account", "key": "account_id"},
                                          {"name": "invoice", "references": {"account_id": "account.account_id"}},
                                          {"name": "invoice_line", "key": ["invoice_id", "line"], "parents": ["invoice"]}]
            plugin["config"]["stream_maps"] = {"*": {"__alias__": "'raw_api_' + __stream_name__"}}
    # A second CSV source: a plugin inheriting the CSV tap, with its own folder and prefix, in a job of its own.
    manifest["plugins"]["extractors"].append({"name": "tap-archive", "inherit_from": "tap-wiserock-csv", "config": {
        "data_dir": "data/archive", "files": [], "stream_maps": {"*": {"__alias__": "'stg_archive_' + __stream_name__"}}}})
    manifest["jobs"].append({"name": "archive", "tasks": ["tap-archive target-postgres"]})


def test_assets_follow_the_taps_settings_in_other_shapes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "Sales Report.csv").write_text("id,amount,client\n1,2.5,7\n", encoding="utf-8")
    (data / "売上.CSV").write_text("Id,Total\n1,3\n", encoding="utf-8")
    (data / "Kunden Liste.csv").write_text("Kunden Nr,Name\n7,Ada\n", encoding="utf-8")
    (data / "empty.csv").write_text("", encoding="utf-8")  # the tap skips it
    (data / "notes.txt").write_text("not a CSV file\n", encoding="utf-8")
    (data / "archive").mkdir()
    (data / "archive" / "Old Orders 2019.csv").write_text("order_id,total\n1,9.5\n", encoding="utf-8")
    project = project_copy(tmp_path / "project", other_sources, data=data)
    graph = repository(project).asset_graph
    keys = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    csv_streams = sorted(name.removeprefix("stg_wiserock_csv_") for name in keys if name.startswith("stg_wiserock_csv_"))
    assert csv_streams == ["clients", "mai_shang", "sales_report"]
    # The same names as the CSV tap's own discovery of that folder.
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data_dir": str(data), "cache_dir": "", "files": [
        {"path": "Kunden Liste.csv", "stream": "clients", "keys": ["kunden_nr"]},
        {"path": "Sales Report.csv", "references": {"client": "clients.kunden_nr"}}]}), encoding="utf-8")
    discovered = subprocess.run([str(PROJECT_DIR / ".venv" / "bin" / "tap-wiserock-csv"), "--config", str(config),
                                 "--discover"], capture_output=True, text=True, check=True, timeout=120)
    assert sorted(stream["tap_stream_id"] for stream in json.loads(discovered.stdout)["streams"]) == csv_streams
    api = {name: node for name, node in keys.items() if name.startswith("raw_api_")}
    assert {name: sorted(parent.to_user_string() for parent in node.parent_keys) for name, node in api.items()} == {
        "raw_api_account": [], "raw_api_invoice": ["raw_api_account"], "raw_api_invoice_line": ["raw_api_invoice"]}
    assert {node.group_name for node in api.values()} == {"tap_wiserock_api"}
    assert [parent.to_user_string() for parent in keys["stg_wiserock_csv_sales_report"].parent_keys] == \
        ["stg_wiserock_csv_clients"]
    assert {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys if key.name != "primary_key"} \
        == {("raw_api_invoice", "no_orphan_account_id"), ("stg_wiserock_csv_sales_report", "no_orphan_client")}
    assert keys["stg_archive_old_orders_2019"].group_name == "tap_archive"


def cannot_run(manifest: dict) -> None:
    manifest["plugins"]["extractors"].append({"name": "tap-elsewhere", "pip_url": "tap-elsewhere==1.0"})
    manifest["jobs"] += [{"name": "with-dbt", "tasks": ["tap-wiserock-csv target-postgres", "dbt:run"]},
                         {"name": "no-loader", "tasks": ["tap-wiserock-csv"]},
                         {"name": "elsewhere", "tasks": ["tap-elsewhere target-postgres"]}]
    manifest["schedules"] += [{"name": "once", "interval": "@once", "job": "wiserock-load"},
                              {"name": "bad-cron", "interval": "61 * * * *", "job": "wiserock-load"},
                              {"name": "ghost", "interval": "@daily", "job": "nope"},
                              {"name": "dbt-nightly", "interval": "@daily", "job": "with-dbt"},
                              {"name": "old-style", "interval": "@daily", "extractor": "tap-wiserock-csv",
                               "loader": "target-postgres"}]


def test_what_dagster_cannot_run_is_one_line_naming_it(tmp_path, capsys):
    project = project_copy(tmp_path / "project", cannot_run, runnable=False)  # Meltano itself refuses a bad cron
    repo = repository(project)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "wiserock-dagster: job 'with-dbt' is not run by Dagster: task 'dbt:run' is not an extractor and loader pair "
        "nor a wiserock-report command",
        "wiserock-dagster: job 'no-loader' is not run by Dagster: extractor 'tap-wiserock-csv' has no loader",
        "wiserock-dagster: job 'elsewhere' is not run by Dagster: the tables of tap-elsewhere cannot be told: Dagster "
        "knows its streams only from a committed catalog (catalog: in meltano.yml)",
        "wiserock-dagster: schedule 'once' is not run by Dagster: interval '@once' never fires",
        "wiserock-dagster: schedule 'ghost' is not run by Dagster: unknown job 'nope'",
        "wiserock-dagster: schedule 'dbt-nightly' is not run by Dagster: a job Dagster does not run 'with-dbt'",
        "wiserock-dagster: schedule 'old-style' is not run by Dagster: it names no job "
        "(extractor/loader schedules: put the pair in a job)",
        "wiserock-dagster: schedule 'bad-cron' is not run by Dagster: interval '61 * * * *' is not a cron expression",
        NO_API,  # (no API settings in this environment)
    ]
    assert [schedule.name for schedule in repo.schedule_defs] == ["wiserock_daily"]  # the rest still runs
    assert repository(PROJECT_DIR, SCHEDULE_TIMEZONE="Mars/Olympus").schedule_defs == []
    assert capsys.readouterr().err.strip().splitlines() == [
        "wiserock-dagster: SCHEDULE_TIMEZONE 'Mars/Olympus' is not a time zone (e.g. UTC, Europe/Paris): no schedule runs",
        NO_API]


def test_the_api_taps_tables_setting_is_read_as_the_tap_reads_it(capsys):
    """Checked by the tap's own rules: a setting the tap would refuse leaves the job out, in one line."""
    tables = '[{"name": "account", "key": "uid"}, {"name": "entry", "key": ["account", "seq"], "parents": ["account"]}]'
    repo = repository(PROJECT_DIR, TAP_WISEROCK_API_TABLES=tables)
    assert capsys.readouterr().err.strip() == NO_API  # nothing left out
    api = repo.get_job("wiserock_load").asset_layer
    assert {"stg_wiserock_account", "stg_wiserock_entry"} <= {key.to_user_string() for key in api.executable_asset_keys}
    repo = repository(PROJECT_DIR, TAP_WISEROCK_API_TABLES='[{"name": "entry", "parents": ["account"]}]')
    assert capsys.readouterr().err.strip() == (
        "wiserock-dagster: job 'wiserock-load' is not run by Dagster: the tables of tap-wiserock-api cannot be told: "
        "tables: 'entry' names parents that are not in tables: 'account'\n"
        "wiserock-dagster: schedule 'wiserock-daily' is not run by Dagster: a job Dagster does not run 'wiserock-load'")
    assert repo.schedule_defs == []


UNLIKE_TABLES = [{"name": "pinned_note"}, {"name": "note"}, {"name": "event", "key": ["tenant", "seq"]}, {"name": "user"}]
# What the API's foreign keys say of those tables (the view pinned_note passes note's through).
UNLIKE_CHECKS = {("stg_wiserock_note", "no_orphan_author_id"), ("stg_wiserock_event", "no_orphan_user_id"),
                 ("stg_wiserock_pinned_note", "no_orphan_author_id")}
UNLIKE_PARENTS = {"stg_wiserock_user": [], "stg_wiserock_note": ["stg_wiserock_user"],
                  "stg_wiserock_event": ["stg_wiserock_user"], "stg_wiserock_pinned_note": ["stg_wiserock_user"]}


def relations_of(graph) -> tuple[dict, set]:
    """The API tables' parents and orphan checks in an asset graph."""
    parents = {key.to_user_string(): sorted(parent.to_user_string() for parent in graph.get(key).parent_keys)
               for key in graph.get_all_asset_keys() if not key.to_user_string().startswith("stg_wiserock_csv_")}
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys
              if key.name != "primary_key" and not key.asset_key.to_user_string().startswith("stg_wiserock_csv_")}
    return parents, checks


def test_relations_come_from_the_apis_description_with_the_service_key(unlike, capsys):
    """No references declared: the code location asks the tap's own discovery, once."""
    repo = repository(PROJECT_DIR, API_URL=unlike.url, API_KEY=SANDBOX_SERVICE_KEY, API_EMAIL="", API_PASSWORD="",
                      TAP_WISEROCK_API_TABLES=json.dumps(UNLIKE_TABLES))
    assert capsys.readouterr().err == ""
    assert relations_of(repo.asset_graph) == (UNLIKE_PARENTS, UNLIKE_CHECKS)
    assert unlike.sandbox.stats.descriptions == 1


def test_relations_come_from_the_references_setting_with_the_anon_key(unlike, capsys):
    declared = {"pinned_note": {"author_id": "user.id"}, "note": {"author_id": "user.id"}, "event": {"user_id": "user.id"}}
    tables = [{**table, "references": declared[table["name"]]} if table["name"] in declared else table
              for table in UNLIKE_TABLES]
    repo = repository(PROJECT_DIR, API_URL=unlike.url, API_KEY=SANDBOX_API_KEY, API_EMAIL=SANDBOX_EMAIL,
                      API_PASSWORD=SANDBOX_PASSWORD, TAP_WISEROCK_API_TABLES=json.dumps(tables))
    assert capsys.readouterr().err == ""
    assert relations_of(repo.asset_graph) == (UNLIKE_PARENTS, UNLIKE_CHECKS)
    without = repository(PROJECT_DIR, API_URL=unlike.url, API_KEY=SANDBOX_API_KEY, API_EMAIL=SANDBOX_EMAIL,
                         API_PASSWORD=SANDBOX_PASSWORD, TAP_WISEROCK_API_TABLES=json.dumps(UNLIKE_TABLES))
    assert relations_of(without.asset_graph)[1] == set()  # the anon key cannot read the foreign keys


def test_an_api_out_of_reach_leaves_the_settings_relations_in_one_line(unlike, capsys):
    tables = [{"name": "user"}, {"name": "note", "references": {"author_id": "user.id"}},
              {"name": "event", "key": ["tenant", "seq"]}]
    unlike.sandbox.faults.error_every, unlike.sandbox.faults.error_status = 1, 503
    env = {"API_URL": unlike.url, "API_KEY": SANDBOX_API_KEY, "API_EMAIL": SANDBOX_EMAIL, "API_PASSWORD": SANDBOX_PASSWORD,
           "TAP_WISEROCK_API_TABLES": json.dumps(tables), "TAP_WISEROCK_API_RETRY_WAIT_MS": "10"}
    repo = repository(PROJECT_DIR, **env)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("wiserock-dagster: tap-wiserock-api: its discovery failed (") and \
        line.endswith("); the relations of its tables come from its tables setting only, until the code location is "
                      "reloaded") and "503" in line
    assert SANDBOX_PASSWORD not in line
    assert relations_of(repo.asset_graph)[1] == {("stg_wiserock_note", "no_orphan_author_id")}


def test_run_workers_rebuild_the_graph_from_what_the_code_server_found(unlike, monkeypatch, capsys):
    """The code server's discovery rides in its reconstruction metadata: a run worker (here: the same
    reconstruction in process) builds the same graph with the API out of reach, asking it nothing."""
    from dagster._core.code_pointer import CodePointer
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
    from dagster._core.definitions.reconstruct import (
        initialize_repository_def_from_pointer,
        reconstruct_repository_def_from_pointer,
    )

    for key, value in {"MELTANO_PROJECT_ROOT": str(PROJECT_DIR), "API_URL": unlike.url, "API_KEY": SANDBOX_SERVICE_KEY,
                       "API_EMAIL": "", "API_PASSWORD": "", "TAP_WISEROCK_API_TABLES": json.dumps(UNLIKE_TABLES)}.items():
        monkeypatch.setenv(key, value)
    pointer = CodePointer.from_module("wiserock_dagster.definitions", "defs", working_directory=None)
    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(DefinitionsLoadType.INITIALIZATION)):
        served = initialize_repository_def_from_pointer(pointer)
        unlike.stop()
        rebuilt = reconstruct_repository_def_from_pointer(pointer, served.repository_load_data)
    assert relations_of(rebuilt.asset_graph) == relations_of(served.asset_graph) == (UNLIKE_PARENTS, UNLIKE_CHECKS)
    assert unlike.sandbox.stats.descriptions == 1
    assert capsys.readouterr().err == ""


def test_a_files_entry_the_csv_tap_would_refuse_leaves_the_job_out_in_one_line(capsys):
    files = '[{"path": "Orders.csv", "key": ["order_id"]}]'
    repo = repository(PROJECT_DIR, TAP_WISEROCK_CSV_FILES=files)
    assert capsys.readouterr().err.splitlines()[0] == (
        "wiserock-dagster: job 'wiserock-load' is not run by Dagster: the tables of tap-wiserock-csv cannot be told: "
        "files entry 'Orders.csv': unknown field 'key' (the fields are: path, stream, keys, column_types, delimiter, "
        "null_values, duplicate_headers, skip_lines, header, references)")
    assert repo.schedule_defs == []
    files = '[{"path": "Orders.csv", "references": {"customer_id": "customer.id"}}]'
    repository(PROJECT_DIR, TAP_WISEROCK_CSV_FILES=files)
    assert capsys.readouterr().err.splitlines()[0].endswith(
        "files entry 'Orders.csv': references customer_id -> customer.id, but no file makes a stream named 'customer' "
        "(the streams: customers, order_items, orders)")


def test_steps_go_to_celery_workers_when_a_broker_is_set():
    broker = "pyamqp://guest:guest@127.0.0.1:5672//"
    assert repository(PROJECT_DIR, DAGSTER_CELERY_BROKER_URL=broker).get_job("wiserock_load").executor_def.name == \
        "celery_executor"
    assert repository(PROJECT_DIR).get_job("wiserock_load").executor_def.name == "in_process"


def test_meltano_users_find_it_as_a_utility():
    result = subprocess.run([str(MELTANO), "invoke", "dagster:serve", "--help"], cwd=PROJECT_DIR, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "`make orchestrate`" in result.stdout and "{serve,worker}" in result.stdout
