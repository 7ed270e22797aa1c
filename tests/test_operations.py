"""Running the project as the team does: job, schedule, failures, standalone taps, settings."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import yaml

from elt.settings import PROJECT_DIR, project_env
from tap_wiserock_api.tap import TapWiseRockApi
from tap_wiserock_csv.tap import TapWiseRockCsv
from target_wiserock_postgres.target import TargetWiseRockPostgres
from tests.conftest import BATCH_DIR, MELTANO, batch_files, meltano, pipeline_env

BIN = pathlib.Path(sys.executable).parent
STAGING_TABLES = ["stg_wiserock_csv_customers", "stg_wiserock_csv_order_items", "stg_wiserock_csv_orders",
                  "stg_wiserock_note", "stg_wiserock_user"]


def test_job_and_schedule_are_listed():
    env = dict(os.environ)
    schedules = json.loads(meltano("schedule", "list", "--format=json", env=env).stdout)
    (schedule,) = schedules["schedules"]["job"]
    assert (schedule["name"], schedule["job"]["name"], schedule["interval"]) == ("wiserock-daily", "wiserock-load", "@daily")
    jobs = json.loads(meltano("job", "list", "--format=json", env=env).stdout)
    assert jobs["jobs"][0]["tasks"] == ["wiserock-report:snapshot", "tap-wiserock-csv target-postgres",
                                        "tap-wiserock-api target-postgres", "wiserock-report:summary"]


def test_scheduled_job_loads_everything_without_orphans_and_summarizes(warehouse, sandbox):
    result = meltano("schedule", "run", "wiserock-daily", env=pipeline_env(warehouse, sandbox))
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for table in STAGING_TABLES:
        assert f"{table} " in output
    orphan_lines = [line for line in output.splitlines() if "orphans:" in line]
    assert len(orphan_lines) == 3
    for line in orphan_lines:
        assert line.rstrip().endswith(": 0"), line
    assert "logs: " in output and "duration: " in output
    assert warehouse.query("select count(*) from stg_wiserock_note n where not exists "
                           "(select 1 from stg_wiserock_user u where u.id = n.user_id)") == [(0,)]
    assert warehouse.count("stg_wiserock_user") == len(sandbox.sandbox.rows("user"))
    assert warehouse.count("stg_wiserock_csv_order_items") == 4000


def test_killed_run_changes_nothing_and_the_next_run_converges(warehouse, sandbox):
    box = sandbox.sandbox
    env = pipeline_env(warehouse, sandbox, TAP_WISEROCK_API_PAGE_SIZE="100")
    # Its own state id, so that the killed run's stale record blocks no other test.
    run = ("run", f"--state-id-suffix={warehouse.schema}", "tap-wiserock-api", "target-postgres")
    assert meltano(*run, env=env).returncode == 0
    good = {table: warehouse.fingerprint(table) for table in ("stg_wiserock_user", "stg_wiserock_note")}
    box.delete_rows("note", [row["id"] for row in box.rows("note")[:300]])
    box.delete_rows("user", [row["id"] for row in box.rows("user")[-3:]])
    box.faults.latency = 0.2
    files_before = batch_files()
    process = subprocess.Popen([str(MELTANO), *run], cwd=PROJECT_DIR,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    reads_at_start = box.stats.reads
    deadline = time.monotonic() + 120
    while box.stats.reads < reads_at_start + 8 and time.monotonic() < deadline:  # into the note table
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # Nobody is left to delete the batch file the killed tap was writing (README: remove such
    # files when no run is going); the test does, so that the project's folder stays clean.
    for name in batch_files() - files_before:
        (BATCH_DIR / name).unlink()
    # The user stream had completed before the kill; still nothing changed anywhere.
    assert {table: warehouse.fingerprint(table) for table in good} == good
    box.faults.latency = 0
    # Meltano guards against concurrent runs: the killed one still looks alive for a few
    # minutes, so a person rerunning at once says --force (a scheduled run finds it stale).
    refused = meltano(*run, env=env)
    assert refused.returncode != 0 and "already running" in refused.stderr
    assert meltano(*run, "--force", env=env).returncode == 0
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in box.rows("note")]
    assert warehouse.ids("stg_wiserock_user") == [row["id"] for row in box.rows("user")]


def test_dropped_database_connections_are_retried_by_rerunning_the_job(warehouse, sandbox):
    """The database drops the loader's connection while it applies the snapshot; the runner reruns."""
    box = sandbox.sandbox
    # This run's connections get their own name, so that no other load on the server is touched.
    application_name = f"target-wiserock-postgres {warehouse.schema}"
    env = {**pipeline_env(warehouse, sandbox), "PGAPPNAME": application_name}
    assert meltano("run", "tap-wiserock-api", "target-postgres", env=env).returncode == 0
    box.delete_rows("note", [row["id"] for row in box.rows("note")[::7]])
    dropped = threading.Event()
    note_table = f'"{warehouse.schema}".stg_wiserock_note'

    def drop_the_loaders_connection_once() -> None:
        deadline = time.monotonic() + 300
        with psycopg.connect(**warehouse.database.params, autocommit=True) as watcher, \
                psycopg.connect(**warehouse.database.params) as locker:
            # EXCLUSIVE lets readers (the job's snapshot task) in but makes the loader wait at its
            # commit step; then that very connection is terminated, as a server restart would.
            locker.execute(f"lock table {note_table} in exclusive mode")
            while time.monotonic() < deadline:
                victims = watcher.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                                          "where application_name = %s and wait_event_type = 'Lock'",
                                          (application_name,)).fetchall()
                if victims:
                    dropped.set()
                    break
                time.sleep(0.05)
            locker.rollback()

    thread = threading.Thread(target=drop_the_loaders_connection_once, daemon=True)
    thread.start()
    run = subprocess.run([str(BIN / "wiserock-elt"), "run"], cwd=PROJECT_DIR,
                         env=env, capture_output=True, text=True, timeout=900, check=False)
    thread.join(timeout=5)
    assert dropped.is_set()
    assert run.returncode == 0, run.stderr[-4000:]
    assert "rerunning the job" in run.stderr
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in box.rows("note")]
    assert warehouse.ids("stg_wiserock_user") == [row["id"] for row in box.rows("user")]


def test_unreachable_database_is_one_clear_line(tmp_path):
    env = {**os.environ, "DB_HOST": "127.0.0.1", "DB_PORT": "9", "DB_USER": "u", "DB_PASSWORD": "secret-pw",
           "DB_NAME": "wiserock", "DB_SCHEMA": "wiserock", "API_URL": "http://127.0.0.1:9"}
    run = subprocess.run([str(BIN / "wiserock-elt"), "run"], cwd=PROJECT_DIR,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("wiserock-elt: error: cannot connect to PostgreSQL at 127.0.0.1:9/wiserock")
    assert "Traceback" not in run.stderr and "secret-pw" not in run.stderr + run.stdout


def test_standalone_tap_piped_into_the_loader(warehouse, sandbox, tmp_path):
    """The documented path without Meltano: tap --config | target-wiserock-postgres --config."""
    env = pipeline_env(warehouse, sandbox)
    tap_config = {"api_url": env["API_URL"], "api_key": env["API_KEY"], "email": env["API_EMAIL"],
                  "password": env["API_PASSWORD"], "emit_activate_version_messages": True}
    (tmp_path / "config.json").write_text(json.dumps(tap_config))
    (tmp_path / "target.json").write_text(json.dumps(warehouse.database.loader_config()))
    pipeline = f"'{BIN / 'tap-wiserock-api'}' --config config.json | '{BIN / 'target-wiserock-postgres'}' --config target.json"
    run = subprocess.run(["/bin/bash", "-o", "pipefail", "-c", pipeline], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert warehouse.ids('"user"') == [row["id"] for row in sandbox.sandbox.rows("user")]
    assert warehouse.count("note") == len(sandbox.sandbox.rows("note"))


def test_stock_target_postgres_still_loads_both_taps(warehouse, sandbox):
    """MeltanoLabs' loader stays declared: standard targets keep working with the taps' RECORD mode
    (the taps write RECORD messages in the environment standard-targets; dev and prod send BATCH files)."""
    env = pipeline_env(warehouse, sandbox)
    if str(warehouse.database.params["host"]).startswith("/"):  # it cannot take a socket directory as host
        params = warehouse.database.params
        env["TARGET_POSTGRES_MELTANOLABS_SQLALCHEMY_URL"] = (
            f"postgresql+psycopg://{params['user']}@/{params['dbname']}?host={params['host']}")
    for tap in ("tap-wiserock-csv", "tap-wiserock-api"):
        result = meltano("--environment", "standard-targets", "run", tap, "target-postgres-meltanolabs", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    assert warehouse.ids("stg_wiserock_user") == [row["id"] for row in sandbox.sandbox.rows("user")]
    assert warehouse.count("stg_wiserock_note") == len(sandbox.sandbox.rows("note"))
    assert warehouse.count("stg_wiserock_csv_order_items") == 4000
    assert "_sdc_table_version" in warehouse.column_types("stg_wiserock_note")  # it really was the stock loader


@pytest.mark.parametrize(("kind", "name", "executable", "plugin_class"), [
    ("extractors", "tap-wiserock-api", "tap-wiserock-api", TapWiseRockApi),
    ("extractors", "tap-wiserock-csv", "tap-wiserock-csv", TapWiseRockCsv),
    ("loaders", "target-postgres", "target-wiserock-postgres", TargetWiseRockPostgres),
])
def test_meltano_settings_match_the_plugins(kind, name, executable, plugin_class):
    plugin = next(p for p in yaml.safe_load((PROJECT_DIR / "meltano.yml").read_text())["plugins"][kind]
                  if p["name"] == name)
    declared = {setting["name"]: setting for setting in plugin["settings"]}
    own = plugin_class.config_jsonschema["properties"]
    about = json.loads(subprocess.run([str(BIN / executable), "--about", "--format=json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert set(own) <= set(declared), "a plugin setting is missing from meltano.yml"
    assert set(declared) <= set(about["settings"]["properties"]), "meltano.yml declares a setting the plugin does not have"
    for setting_name, schema in own.items():
        setting = declared[setting_name]
        assert bool(setting.get("sensitive")) == bool(schema.get("secret")), setting_name
        assert setting.get("value") == schema.get("default"), setting_name
        assert setting.get("description") == schema.get("description"), setting_name


@pytest.mark.parametrize(("env", "expected"), [({}, None), ({"DB_SSLMODE": "require"}, "require"),
                                              ({"DB_SSLMODE": "verify-full"}, "verify-full")])
def test_db_sslmode_reaches_the_loader(env, expected):
    base = {k: v for k, v in os.environ.items() if k not in {"DB_SSLMODE", "PGSSLMODE"}}
    if "DB_SSLMODE" in project_env():
        pytest.skip("the project's .env sets DB_SSLMODE")
    config = json.loads(meltano("config", "print", "target-postgres", env={**base, **env}).stdout)
    assert config.get("sslmode") == expected  # unset: the loader's own default, prefer


def test_db_sslmode_reaches_the_stock_loader_as_libpq_sslmode():
    base = {k: v for k, v in os.environ.items() if k not in {"DB_SSLMODE", "PGSSLMODE"}}
    result = meltano("invoke", "--print-var", "PGSSLMODE", "target-postgres-meltanolabs", env={**base, "DB_SSLMODE": "require"})
    assert "PGSSLMODE=require" in result.stdout


def test_meltano_variables_override_the_dotenv_keys():
    env = {**os.environ, "API_URL": "https://from-dotenv-key.example", "TAP_WISEROCK_API_API_URL": "https://meltano-var.example"}
    config = json.loads(meltano("config", "print", "tap-wiserock-api", env=env).stdout)
    assert config["api_url"] == "https://meltano-var.example"
    env.pop("TAP_WISEROCK_API_API_URL")
    assert json.loads(meltano("config", "print", "tap-wiserock-api", env=env).stdout)["api_url"] == env["API_URL"]


def test_environment_wins_over_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("DB_HOST=from-dotenv\nDB_SCHEMA=from-dotenv\n")
    monkeypatch.setenv("DB_HOST", "from-environment")
    monkeypatch.delenv("DB_SCHEMA", raising=False)
    env = project_env(tmp_path)
    assert (env["DB_HOST"], env["DB_SCHEMA"]) == ("from-environment", "from-dotenv")
