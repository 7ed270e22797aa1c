"""Contract 8: the settings (from the project's DB_* keys), socket directories, empty passwords,
secrets never printed, and failures of the database named so that the runner can rerun."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from elt.run import TRANSIENT_DATABASE_ERROR
from tests.conftest import (
    PROGRAM,
    command,
    error_line,
    finish,
    load,
    record,
    run_cli,
    schema,
    send,
    snapshot,
    start,
    wait_for_copy,
)

SECRET = "pw-that-must-never-be-printed"


def test_about_lists_each_setting_once_with_a_description():
    about = subprocess.run([sys.executable, "-m", "target_wiserock_postgres.target", "--about", "--format", "json"],
                           capture_output=True, text=True, check=True)
    settings = json.loads(about.stdout)["settings"]
    assert list(settings["properties"]) == ["host", "port", "user", "password", "database", "default_target_schema",
                                            "sslmode", "complete_streams_at_end_of_input", "batch_roots"]
    assert all(prop.get("title") and prop.get("description") for prop in settings["properties"].values())
    assert settings["properties"]["password"].get("secret") is True
    assert settings["required"] == ["default_target_schema"]


@pytest.mark.parametrize("password", ["", None])
def test_an_empty_password_works_where_the_server_allows_it(warehouse, password):
    config = {k: v for k, v in warehouse.config.items() if k != "password"}
    warehouse.server = {**warehouse.server, "password": password}
    assert "password" not in warehouse.config or warehouse.config["password"] == ""
    load(warehouse, snapshot("t", [{"id": 1}], id="integer"), **{**config, **({} if password is None else
                                                                               {"password": password})})
    assert warehouse.rows("t") == [(1,)]


def test_a_socket_directory_as_host(warehouse):
    host = warehouse.server["host"]
    folder = host if host.startswith("/") else "/var/run/postgresql"
    if not (pathlib.Path(folder) / f".s.PGSQL.{warehouse.server['port']}").exists():
        pytest.skip(f"no PostgreSQL socket in {folder}")
    load(warehouse, snapshot("t", [{"id": 1}], id="integer"), host=folder)
    assert warehouse.rows("t") == [(1,)]


def test_the_password_is_never_printed(warehouse):
    ok = run_cli(warehouse, snapshot("t", [{"id": 1}], id="integer"), password=SECRET)
    assert ok.returncode == 0, ok.stderr[-2000:]
    failed = run_cli(warehouse, snapshot("t", [{"id": 1}], id="integer"), password=SECRET, host="127.0.0.1", port=1)
    assert f"database at 127.0.0.1:1/{warehouse.server['database']}: connection failed" in error_line(failed)
    for result in (ok, failed):
        assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(("settings", "expected"), [
    ({"default_target_schema": None}, "invalid settings: 'default_target_schema' is a required property"),
    ({"sslmode": "sometimes"}, "invalid settings: 'sometimes' is not one of"),
])
def test_invalid_settings_are_one_line(warehouse, settings, expected):
    config = {k: v for k, v in {**warehouse.config, **settings}.items() if v is not None}
    path = warehouse.folder / "bad.json"
    path.write_text(json.dumps(config))
    result = subprocess.run([sys.executable, "-m", "target_wiserock_postgres.target", "--config", str(path)],
                            input="", capture_output=True, text=True, check=False)
    assert expected in error_line(result)


def test_a_lost_connection_is_reported_as_transient(warehouse):
    """The project's runner reruns the job on the server's own words; a rerun is safe."""
    load(warehouse, snapshot("t", [{"id": 1}], id="integer"))
    process = start(warehouse)
    send(process, [schema("t", id="integer"), *(record("t", id=n) for n in range(10, 5000))])
    wait_for_copy(warehouse)
    warehouse.query("select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
                    warehouse.application_name)
    with contextlib.suppress(BrokenPipeError):  # the loader may have stopped reading already
        send(process, [record("t", id=n) for n in range(5000, 60_000)])
    line = error_line(finish(process))
    assert TRANSIENT_DATABASE_ERROR.search(line), line
    assert "nothing was changed, rerun the job" in line
    assert warehouse.rows("t") == [(1,)]


@pytest.mark.parametrize("application_name", [None, "wiserock nightly load"])
def test_the_loaders_connection_is_named_for_pg_stat_activity(warehouse, application_name):
    """A DBA finds the loader in pg_stat_activity: by PGAPPNAME where it is set (e.g. per job), else by its name."""
    env = {name: value for name, value in os.environ.items() if name != "PGAPPNAME"}
    process = subprocess.Popen(command(warehouse), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env | ({"PGAPPNAME": application_name} if application_name else {}))
    send(process, [schema("t", id="integer"), *(record("t", id=n) for n in range(5000))])
    deadline, names = time.monotonic() + 30, []
    while not names and time.monotonic() < deadline:  # the COPY into this test's new table
        names = warehouse.query("select application_name from pg_stat_activity where query ilike %s",
                                f"copy %{warehouse.schema}%")
        time.sleep(0.05)
    process.kill()
    finish(process)
    assert names == [(application_name or PROGRAM,)]
