"""Past one machine, on one machine: Dagster's storage and Meltano's system database on PostgreSQL,
steps on two Celery workers (`make orchestrate-worker`) through the local RabbitMQ. Skipped, saying
why, when no broker answers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import urllib.parse
import uuid

import psutil
import pytest
from conftest import (
    SERVE,
    Orchestra,
    alive,
    create_system_database,
    drop_schemas,
    kill_all,
    meltano_session,
    pipeline_env,
    project_copy,
    wait_for,
)

BROKER = os.environ.get("DAGSTER_CELERY_BROKER_URL") or "pyamqp://guest:guest@127.0.0.1:5672//"
LOADS = ("tap_wiserock_csv_to_target_postgres", "tap_wiserock_api_to_target_postgres")


def broker_problem(url: str) -> str | None:
    address = urllib.parse.urlsplit(url)
    try:
        socket.create_connection((address.hostname, address.port or 5672), timeout=3).close()
    except OSError as exc:
        return f"no AMQP broker answers at {address.hostname}:{address.port or 5672} ({exc}): the Celery test needs one"
    return None


@pytest.fixture(scope="module")
def celery_dagster(tmp_path_factory, module_warehouse, api):
    if problem := broker_problem(BROKER):
        pytest.skip(problem)
    database = module_warehouse.server.env
    if database["DB_HOST"].startswith("/"):
        pytest.skip("the test server is a unix socket; Dagster's PostgreSQL storage is tested over TCP")
    folder = tmp_path_factory.mktemp("celery")
    suffix = uuid.uuid4().hex[:10]
    dagster_schema, meltano_schema = f"dgs_{suffix}", f"dgm_{suffix}"
    module_warehouse.query(f"create schema {meltano_schema}")
    env = {**pipeline_env(module_warehouse, api), "DAGSTER_CELERY_BROKER_URL": BROKER,
           "DAGSTER_PG_HOST": database["DB_HOST"], "DAGSTER_PG_PORT": database["DB_PORT"],
           "DAGSTER_PG_USER": database["DB_USER"], "DAGSTER_PG_PASSWORD": database["DB_PASSWORD"],
           "DAGSTER_PG_DB": database["DB_NAME"], "DAGSTER_PG_SCHEMA": dagster_schema,
           "MELTANO_DATABASE_URI": f"postgresql+psycopg://{database['DB_USER']}@{database['DB_HOST']}:{database['DB_PORT']}/"
                                   f"{database['DB_NAME']}?options=-csearch_path%3D{meltano_schema}"}
    # A checkout per machine: Meltano's runs of one plugin must not share a project's run folder.
    project, *checkouts = (project_copy(folder / name) for name in ("scheduler", "w1", "w2"))
    create_system_database(project, env)
    workers = []
    try:
        for name, checkout in zip(("w1", "w2"), checkouts, strict=True):
            with (folder / f"{name}.log").open("w") as log:
                workers.append(subprocess.Popen([*SERVE, "worker", "--name", f"{name}@%h"],
                                                env={**os.environ, **env, "MELTANO_PROJECT_ROOT": str(checkout),
                                                     "DAGSTER_HOME": str(checkout / ".dagster")},
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        for name in ("w1", "w2"):
            wait_for(lambda name=name: " ready." in (folder / f"{name}.log").read_text(), 120, f"worker {name}")
        dagster = Orchestra(project, env, folder / "orchestrate.log")
        try:
            yield dagster, workers, dagster_schema, meltano_schema
        finally:
            dagster.stop()
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)  # a warm shutdown: the step in progress finishes
        for worker in workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                kill_all([worker])
        drop_schemas(module_warehouse.server, dagster_schema, meltano_schema)


def step_pids(orchestra: Orchestra, run_id: str) -> dict[str, int]:
    """The process each load step ran in, from its first line: `meltano run ... on HOST (pid N), into ...`."""
    found = {}
    for event in orchestra.logs(run_id):
        if match := re.search(r" \(pid (\d+)\), into ", event.get("message") or ""):
            found[event["stepKey"]] = int(match[1])
    return found


def test_the_csv_and_api_loads_of_one_run_go_to_two_workers_at_once(celery_dagster, module_warehouse, api):
    orchestra, workers, dagster_schema, meltano_schema = celery_dagster
    run_id = orchestra.launch("wiserock_load")
    run = orchestra.wait_for_status(run_id, {"SUCCESS", "FAILURE", "CANCELED"}, 300)
    assert run["status"] == "SUCCESS", orchestra.why(run_id)
    assert module_warehouse.ids("stg_wiserock_note") == [row["id"] for row in api.sandbox.rows("note")]
    assert module_warehouse.count("stg_wiserock_csv_order_items") > 0
    pids = step_pids(orchestra, run_id)
    assert set(pids) == set(LOADS)
    # Each ran in a pool process of a different worker ...
    assert {psutil.Process(pid).ppid() for pid in pids.values()} == {worker.pid for worker in workers}
    # ... at the same time: each step's first event comes before the other's last.
    times = {step: [int(event["timestamp"]) for event in orchestra.logs(run_id) if event.get("stepKey") == step]
             for step in LOADS}
    assert max(min(stamps) for stamps in times.values()) < min(max(stamps) for stamps in times.values())
    # Meltano's lines reached the run's log from the workers.
    assert any("target-postgres Committed" in (event.get("message") or "") for event in orchestra.logs(run_id))
    # The storage's password stays in the environment: dagster.yaml names the variable.
    assert module_warehouse.server.env["DB_PASSWORD"] not in (orchestra.home / "dagster.yaml").read_text()
    assert "DAGSTER_PG_PASSWORD" in (orchestra.home / "dagster.yaml").read_text()
    # The run is in Dagster's storage on PostgreSQL, the loads in Meltano's system database there.
    assert module_warehouse.query(f"select status from {dagster_schema}.runs where run_id = %s", run_id) == [("SUCCESS",)]
    states = module_warehouse.query(f"select job_name, state from {meltano_schema}.runs order by started_at")
    assert {job.split(":")[-1] for job, state in states if state == "SUCCESS"} >= {
        "tap-wiserock-csv-to-target-postgres", "tap-wiserock-api-to-target-postgres"}


def test_cancelling_a_run_stops_the_load_on_its_worker(celery_dagster, module_warehouse, api):
    """dagster-celery only revokes a running step: the step itself sees the run cancelled and stops Meltano."""
    orchestra, _workers, _dagster_schema, _meltano_schema = celery_dagster
    box = api.sandbox
    good = module_warehouse.fingerprint("stg_wiserock_note")
    box.delete_rows("note", [row["id"] for row in box.rows("note")[::3]])
    gate, reached = threading.Event(), threading.Event()

    def hold(_sandbox: object) -> None:
        reached.set()
        gate.wait(300)

    box.faults.on_request[box.stats.reads + 3] = hold
    try:
        run_id = orchestra.launch("wiserock_load")
        wait_for(reached.is_set, 120, "the load to reach the API")
        group = meltano_session(orchestra, run_id)
        orchestra.graphql("mutation($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }", ids=[run_id])
        orchestra.wait_for_status(run_id, {"CANCELED"}, 120)
        wait_for(lambda: not alive(group), 60, "Meltano, the tap and the loader to stop on the worker")
        assert module_warehouse.fingerprint("stg_wiserock_note") == good
    finally:
        gate.set()
        box.faults.on_request.clear()

