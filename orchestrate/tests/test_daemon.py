"""`make orchestrate` with the real daemon, a schedule set to every minute, one Dagster for the module.

In order: a tick runs the job and loads the tables; the assets carry the run's numbers and
checks; a tick while a run goes is queued; cancelling that run stops Meltano, the tap and the
loader and changes no table, and the queued run then goes through (no stale lock); a failed run
posts its alert; SIGTERM stops everything `make orchestrate` started.
"""

from __future__ import annotations

import csv
import threading
import time

import psutil
import pytest
from conftest import Orchestra, alive, every_minute, meltano_session, pipeline_env, project_copy, wait_for

from elt.settings import PROJECT_DIR

SCHEDULE = "wiserock_daily"
API_TABLES = ("stg_wiserock_user", "stg_wiserock_note")
CSV_FILES = {"stg_wiserock_csv_customers": "Customers.csv", "stg_wiserock_csv_orders": "Orders.csv",
             "stg_wiserock_csv_order_items": "Order Items.CSV"}


def csv_rows(file: str) -> int:
    with (PROJECT_DIR / "data" / file).open(encoding="utf-8-sig", newline="") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


@pytest.fixture(scope="module")
def orchestra(tmp_path_factory, module_warehouse, api, receiver):
    folder = tmp_path_factory.mktemp("daemon")
    project = project_copy(folder / "project", every_minute)
    dagster = Orchestra(project, {**pipeline_env(module_warehouse, api), "ALERT_WEBHOOK_URL": receiver.url},
                        folder / "orchestrate.log")
    yield dagster
    dagster.stop()


@pytest.fixture(scope="module")
def scheduled_run(orchestra):
    """The first run a tick of the every-minute schedule started, once finished."""
    run = wait_for(lambda: next((run for run in orchestra.runs() if tags(run).get("dagster/schedule_name") == SCHEDULE),
                                None), 150, "the schedule's first tick")
    return orchestra.wait_for_status(run["runId"], {"SUCCESS", "FAILURE", "CANCELED"}, 300)


def test_a_tick_runs_the_meltano_job_and_the_tables_load(orchestra, scheduled_run, module_warehouse, api):
    assert scheduled_run["status"] == "SUCCESS", orchestra.why(scheduled_run["runId"])
    assert tags(scheduled_run)["meltano/job"] == "wiserock-load"
    assert module_warehouse.ids("stg_wiserock_user") == [row["id"] for row in api.sandbox.rows("user")]
    assert module_warehouse.ids("stg_wiserock_note") == [row["id"] for row in api.sandbox.rows("note")]
    for table, file in CSV_FILES.items():
        assert module_warehouse.count(table) == csv_rows(file)
    messages = [event.get("message") or "" for event in orchestra.logs(scheduled_run["runId"])]
    # Meltano's own output is in the run's log, line by line, and each load ends with its summary.
    assert any("target-postgres Committed" in message for message in messages)
    assert sum(message.startswith("load summary") for message in messages) == 2
    # Informational (never asserted): the tick-to-finish time of a scheduled run.
    tick = int(scheduled_run["creationTime"]) // 60 * 60
    print(f"scheduled run: tick to finished {scheduled_run['endTime'] - tick:.1f} s, "
          f"started to finished {scheduled_run['endTime'] - scheduled_run['startTime']:.1f} s")


def test_each_table_is_an_asset_with_the_runs_numbers_and_checks(orchestra, scheduled_run, module_warehouse):
    nodes = orchestra.graphql("""{ assetNodes { assetKey { path } groupName dependencyKeys { path }
        assetMaterializations(limit: 1) { runId metadataEntries { label ... on IntMetadataEntry { intValue } } }
        assetChecksOrError { ... on AssetChecks { checks { name
            executionForLatestMaterialization { status evaluation { success } } } } } } }""")["assetNodes"]
    assets = {node["assetKey"]["path"][-1]: node for node in nodes}
    assert set(assets) == {*API_TABLES, *CSV_FILES}
    assert {name: node["groupName"] for name, node in assets.items()} == {
        **dict.fromkeys(API_TABLES, "tap_wiserock_api"), **dict.fromkeys(CSV_FILES, "tap_wiserock_csv")}
    assert [key["path"] for key in assets["stg_wiserock_note"]["dependencyKeys"]] == [["stg_wiserock_user"]]
    assert [key["path"] for key in assets["stg_wiserock_csv_order_items"]["dependencyKeys"]] == [["stg_wiserock_csv_orders"]]
    for name, node in assets.items():
        (materialization,) = node["assetMaterializations"]
        assert materialization["runId"] == scheduled_run["runId"]
        numbers = {entry["label"]: entry.get("intValue") for entry in materialization["metadataEntries"]}
        rows = module_warehouse.count(name)
        assert (numbers["rows"], numbers["added"], numbers["deleted"]) == (rows, rows, 0)  # a first load: all new
        checks = {check["name"]: check["executionForLatestMaterialization"] for check in
                  node["assetChecksOrError"]["checks"]}
        expected = {"primary_key"} | ({"no_orphan_user_id"} if name == "stg_wiserock_note" else set()) | (
            {"no_orphan_customer_id"} if name == "stg_wiserock_csv_orders" else set()) | (
            {"no_orphan_order_id"} if name == "stg_wiserock_csv_order_items" else set())
        assert set(checks) == expected
        assert all(check["status"] == "SUCCEEDED" and check["evaluation"]["success"] for check in checks.values()), checks


def test_a_tick_while_a_run_goes_is_queued_and_cancel_stops_the_load(orchestra, scheduled_run, module_warehouse, api):
    box = api.sandbox
    good = {table: module_warehouse.fingerprint(table) for table in API_TABLES}
    box.delete_rows("note", [row["id"] for row in box.rows("note")[::5]])  # a committed load would show this
    gate, reached = threading.Event(), threading.Event()

    def hold(_sandbox: object) -> None:  # the API stops answering in the middle of the load
        reached.set()
        gate.wait(300)

    box.faults.on_request[box.stats.reads + 3] = hold
    try:
        orchestra.set_schedule(SCHEDULE, running=False)  # launch one by hand, then let the next tick come
        going = orchestra.launch("wiserock_load")
        wait_for(reached.is_set, 120, "the load to reach the API")
        orchestra.set_schedule(SCHEDULE, running=True)
        queued = wait_for(lambda: next((run for run in orchestra.runs() if run["status"] == "QUEUED"), None),
                          150, "the next tick's run")
        orchestra.set_schedule(SCHEDULE, running=False)
        assert tags(queued)["dagster/schedule_name"] == SCHEDULE
        assert orchestra.run(going)["status"] == "STARTED"
        time.sleep(5)
        assert orchestra.run(queued["runId"])["status"] == "QUEUED"  # still waiting: one run of the job at a time

        group = meltano_session(orchestra, going)
        orchestra.graphql("mutation($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }", ids=[going])
        orchestra.wait_for_status(going, {"CANCELED"}, 60)
        wait_for(lambda: not alive(group), 30, "Meltano, the tap and the loader to stop")
        assert {table: module_warehouse.fingerprint(table) for table in API_TABLES} == good
        stopping = [event.get("message") or "" for event in orchestra.logs(going)]
        assert any("target-wiserock-postgres: error: stopped by signal SIGTERM" in line for line in stopping)  # rolled back
        assert any("The process was terminated" in line for line in stopping)  # Meltano's last words reach the log
    finally:
        gate.set()
        box.faults.on_request.clear()
    # The queued tick's run now goes, and Meltano does not refuse it: no stale "already running".
    after = orchestra.wait_for_status(queued["runId"], {"SUCCESS", "FAILURE", "CANCELED"}, 300)
    assert after["status"] == "SUCCESS", orchestra.why(queued["runId"])
    assert module_warehouse.ids("stg_wiserock_note") == [row["id"] for row in box.rows("note")]
    batches = orchestra.home.parent / ".meltano" / "run" / "batches"
    assert not any(batches.glob("*")), list(batches.glob("*"))  # the stopped tap left no batch file behind


def test_a_failed_run_posts_its_alert_with_the_error_line(orchestra, receiver, api):
    api.sandbox.faults.error_every, api.sandbox.faults.error_status = 1, 404
    try:
        failed = orchestra.launch("wiserock_load")
        run = orchestra.wait_for_status(failed, {"SUCCESS", "FAILURE", "CANCELED"}, 300)
    finally:
        api.sandbox.faults.error_every = 0
    assert run["status"] == "FAILURE"
    alert = wait_for(lambda: next((body for body in receiver.received if body.get("run_id") == failed), None),
                     120, "the alert")
    assert alert["job"] == "wiserock-load"
    assert alert["run_url"] == f"{orchestra.url}/runs/{failed}"
    assert alert["error"].startswith("tap-wiserock-api: error: table 'user' not found: HTTP 404")
    assert "\n" not in alert["error"] and alert["error"] in alert["text"]
    messages = [event.get("message") or "" for event in orchestra.logs(failed)]
    assert not any("rerunning this load" in message for message in messages)  # not a transient fault: no retry
    assert "secret-token" not in orchestra.log.read_text()  # the webhook's address (a secret) is never printed


def test_sigterm_stops_everything_make_orchestrate_started(orchestra):
    started = [orchestra.process.pid, *(child.pid for child in psutil.Process(orchestra.process.pid).children(recursive=True))]
    assert len(started) >= 4  # serve.py, the code server, the web UI, the daemon
    assert orchestra.stop() == 0
    assert not alive(started)
