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

from elt.settings import EMBEDDED_URL_VARIABLE, PROJECT_DIR, project_env
from tap_wiserock_api.tap import TapWiseRockApi
from tap_wiserock_csv.tap import TapWiseRockCsv
from tests.conftest import MELTANO, meltano, pipeline_env

TARGET_POSTGRES = PROJECT_DIR / ".meltano/loaders/target-postgres/venv/bin/target-postgres"
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


def test_killed_run_keeps_the_last_good_run_and_the_next_run_converges(warehouse, sandbox):
    box = sandbox.sandbox
    env = pipeline_env(warehouse, sandbox, TAP_WISEROCK_API_PAGE_SIZE="100")
    # Its own state id, so that the killed run's stale record blocks no other test.
    run = ("run", f"--state-id-suffix={warehouse.schema}", "tap-wiserock-api", "target-postgres")
    assert meltano(*run, env=env).returncode == 0
    good_notes = set(warehouse.ids("stg_wiserock_note"))
    box.delete_rows("note", [row["id"] for row in box.rows("note")[:300]])
    box.faults.latency = 0.2
    process = subprocess.Popen([str(MELTANO), *run], cwd=PROJECT_DIR,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    reads_at_start = box.stats.reads
    deadline = time.monotonic() + 120
    while box.stats.reads < reads_at_start + 8 and time.monotonic() < deadline:  # into the note table
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert good_notes <= set(warehouse.ids("stg_wiserock_note"))
    box.faults.latency = 0
    # Meltano guards against concurrent runs: the killed one still looks alive for a few
    # minutes, so a person rerunning at once says --force (a scheduled run finds it stale).
    refused = meltano(*run, env=env)
    assert refused.returncode != 0 and "already running" in refused.stderr
    assert meltano(*run, "--force", env=env).returncode == 0
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in box.rows("note")]


def test_dropped_database_connections_are_retried_by_rerunning_the_job(warehouse, sandbox):
    """The database drops the loader's connection in the middle of a write; the runner reruns."""
    box = sandbox.sandbox
    box.faults.latency = 0.05  # the note pages take a moment: the lock is in place before the write
    env = pipeline_env(warehouse, sandbox, TAP_WISEROCK_API_PAGE_SIZE="200")
    dropped = threading.Event()
    note_table = f'"{warehouse.schema}".stg_wiserock_note'

    def drop_the_loaders_connection_once() -> None:
        deadline = time.monotonic() + 300
        with psycopg.connect(**warehouse.database.params, autocommit=True) as watcher, \
                psycopg.connect(**warehouse.database.params) as locker:
            while time.monotonic() < deadline and not watcher.execute("select to_regclass(%s)", (note_table,)).fetchone()[0]:
                time.sleep(0.05)
            # Hold the table so that the loader's write waits on it, then cut that very connection.
            locker.execute(f"lock table {note_table} in access exclusive mode")
            while time.monotonic() < deadline:
                victims = watcher.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                                          "where datname = current_database() and wait_event_type = 'Lock' "
                                          "and pid <> %s", (locker.info.backend_pid,)).fetchall()
                if victims:
                    dropped.set()
                    break
                time.sleep(0.05)
            locker.rollback()

    thread = threading.Thread(target=drop_the_loaders_connection_once, daemon=True)
    thread.start()
    run = subprocess.run([str(pathlib.Path(sys.executable).with_name("wiserock-elt")), "run"], cwd=PROJECT_DIR,
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
    run = subprocess.run([str(pathlib.Path(sys.executable).with_name("wiserock-elt")), "run"], cwd=PROJECT_DIR,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("wiserock-elt: error: cannot connect to PostgreSQL at 127.0.0.1:9/wiserock")
    assert "Traceback" not in run.stderr and "secret-pw" not in run.stderr + run.stdout


def test_standalone_tap_piped_into_target_postgres(warehouse, sandbox, tmp_path):
    """The documented path without Meltano: tap --config | target-postgres --config."""
    env = pipeline_env(warehouse, sandbox)
    tap_config = {"api_url": env["API_URL"], "api_key": env["API_KEY"], "email": env["API_EMAIL"],
                  "password": env["API_PASSWORD"], "emit_activate_version_messages": True}
    params = warehouse.database.params
    target_config = {"default_target_schema": warehouse.schema, "hard_delete": True, "use_copy": True,
                     "sanitize_null_text_characters": True}
    if EMBEDDED_URL_VARIABLE in warehouse.server.env:
        target_config["sqlalchemy_url"] = warehouse.server.env[EMBEDDED_URL_VARIABLE]
    else:
        target_config.update(host=params["host"], port=params["port"], user=params["user"],
                             password=params.get("password", ""), database=params["dbname"])
    (tmp_path / "config.json").write_text(json.dumps(tap_config))
    (tmp_path / "target.json").write_text(json.dumps(target_config))
    tap_exe = pathlib.Path(sys.executable).with_name("tap-wiserock-api")
    pipeline = f"'{tap_exe}' --config config.json | '{TARGET_POSTGRES}' --config target.json"
    run = subprocess.run(["/bin/bash", "-o", "pipefail", "-c", pipeline], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert warehouse.ids('"user"') == [row["id"] for row in sandbox.sandbox.rows("user")]
    assert warehouse.count("note") == len(sandbox.sandbox.rows("note"))


@pytest.mark.parametrize(("name", "tap_class"), [("tap-wiserock-api", TapWiseRockApi), ("tap-wiserock-csv", TapWiseRockCsv)])
def test_meltano_settings_match_the_taps(name, tap_class):
    plugin = next(p for p in yaml.safe_load((PROJECT_DIR / "meltano.yml").read_text())["plugins"]["extractors"]
                  if p["name"] == name)
    declared = {setting["name"]: setting for setting in plugin["settings"]}
    own = tap_class.config_jsonschema["properties"]
    about = json.loads(subprocess.run([str(pathlib.Path(sys.executable).with_name(name)), "--about", "--format=json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert set(own) <= set(declared), "a tap setting is missing from meltano.yml"
    assert set(declared) <= set(about["settings"]["properties"]), "meltano.yml declares a setting the tap does not have"
    for setting_name, schema in own.items():
        setting = declared[setting_name]
        assert bool(setting.get("sensitive")) == bool(schema.get("secret")), setting_name
        assert setting.get("value") == schema.get("default"), setting_name
        assert setting.get("description") == schema.get("description"), setting_name


@pytest.mark.parametrize(("env", "expected"), [({}, "prefer"), ({"DB_SSLMODE": "require"}, "require"),
                                              ({"DB_SSLMODE": "verify-full"}, "verify-full")])
def test_db_sslmode_reaches_the_loader_as_libpq_sslmode(env, expected):
    base = {k: v for k, v in os.environ.items() if k not in {"DB_SSLMODE", "PGSSLMODE"}}
    if "DB_SSLMODE" in project_env():
        pytest.skip("the project's .env sets DB_SSLMODE")
    result = meltano("invoke", "--print-var", "PGSSLMODE", "target-postgres", env={**base, **env})
    assert f"PGSSLMODE={expected}" in result.stdout


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
