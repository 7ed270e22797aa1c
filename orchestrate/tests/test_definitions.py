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

MELTANO = PROJECT_DIR / ".venv" / "bin" / "meltano"


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
            plugin["config"]["files"] = [{"path": "Kunden Liste.csv", "stream": "clients", "keys": ["kunden_nr"]}]
        if plugin["name"] == "tap-wiserock-api":
            plugin["config"]["tables"] = [{"name": "account", "key": "account_id"},
                                          {"name": "invoice", "parents": ["account"]},
                                          {"name": "invoice_line", "key": ["invoice_id", "line"], "parents": ["invoice"]}]
            plugin["config"]["stream_maps"] = {"*": {"__alias__": "'raw_api_' + __stream_name__"}}
    # A second CSV source: a plugin inheriting the CSV tap, with its own folder and prefix, in a job of its own.
    manifest["plugins"]["extractors"].append({"name": "tap-archive", "inherit_from": "tap-wiserock-csv", "config": {
        "data_dir": "data/archive", "files": [], "stream_maps": {"*": {"__alias__": "'stg_archive_' + __stream_name__"}}}})
    manifest["jobs"].append({"name": "archive", "tasks": ["tap-archive target-postgres"]})


def test_assets_follow_the_taps_settings_in_other_shapes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "Sales Report.csv").write_text("id,amount\n1,2.5\n", encoding="utf-8")
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
        {"path": "Kunden Liste.csv", "stream": "clients", "keys": ["kunden_nr"]}]}), encoding="utf-8")
    discovered = subprocess.run([str(PROJECT_DIR / ".venv" / "bin" / "tap-wiserock-csv"), "--config", str(config),
                                 "--discover"], capture_output=True, text=True, check=True, timeout=120)
    assert sorted(stream["tap_stream_id"] for stream in json.loads(discovered.stdout)["streams"]) == csv_streams
    api = {name: node for name, node in keys.items() if name.startswith("raw_api_")}
    assert {name: sorted(parent.to_user_string() for parent in node.parent_keys) for name, node in api.items()} == {
        "raw_api_account": [], "raw_api_invoice": ["raw_api_account"], "raw_api_invoice_line": ["raw_api_invoice"]}
    assert {node.group_name for node in api.values()} == {"tap_wiserock_api"}
    assert {key.name for key in graph.asset_check_keys} == {"primary_key"}  # no known relation among these
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
    ]
    assert [schedule.name for schedule in repo.schedule_defs] == ["wiserock_daily"]  # the rest still runs
    assert repository(PROJECT_DIR, SCHEDULE_TIMEZONE="Mars/Olympus").schedule_defs == []
    assert capsys.readouterr().err.strip() == ("wiserock-dagster: SCHEDULE_TIMEZONE 'Mars/Olympus' is not a time zone "
                                               "(e.g. UTC, Europe/Paris): no schedule runs")


def test_the_api_taps_tables_setting_is_read_as_the_tap_reads_it(capsys):
    """Checked by the tap's own rules: a setting the tap would refuse leaves the job out, in one line."""
    tables = '[{"name": "account", "key": "uid"}, {"name": "entry", "key": ["account", "seq"], "parents": ["account"]}]'
    repo = repository(PROJECT_DIR, TAP_WISEROCK_API_TABLES=tables)
    assert capsys.readouterr().err == ""
    api = repo.get_job("wiserock_load").asset_layer
    assert {"stg_wiserock_account", "stg_wiserock_entry"} <= {key.to_user_string() for key in api.executable_asset_keys}
    repo = repository(PROJECT_DIR, TAP_WISEROCK_API_TABLES='[{"name": "entry", "parents": ["account"]}]')
    assert capsys.readouterr().err.strip() == (
        "wiserock-dagster: job 'wiserock-load' is not run by Dagster: the tables of tap-wiserock-api cannot be told: "
        "tables: 'entry' names parents that are not in tables: 'account'\n"
        "wiserock-dagster: schedule 'wiserock-daily' is not run by Dagster: a job Dagster does not run 'wiserock-load'")
    assert repo.schedule_defs == []


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
