"""Fixtures for the orchestration tests: a copy of the project to point Dagster at, the real
PostgreSQL (tests/conftest.py's server and schema-per-test warehouse), the API sandbox, a webhook
receiver, and `make orchestrate` itself (orchestrate/serve.py) with its daemon, web UI and workers."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import typing as t
import uuid

import psutil
import psycopg
import pytest
import requests
import yaml
from psycopg import sql

from elt.settings import PROJECT_DIR
from tests.conftest import Server, Warehouse, sandbox, server, unlike, warehouse  # noqa: F401 (fixtures shared with tests/)
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, Faults, Sandbox, SandboxHTTPServer

if t.TYPE_CHECKING:
    import pathlib

SERVE = [str(PROJECT_DIR / ".venv" / "bin" / "python"), str(PROJECT_DIR / "orchestrate" / "serve.py")]
# What `meltano run` needs from the project; the copy gets its own meltano.yml, system database and logs.
SHARED = [".venv", "plugins", "logging.yaml", "pyproject.toml", "elt", "tap-wiserock-api", "tap-wiserock-csv",
          "target-wiserock-postgres", "wiserock-sandbox"]


def project_copy(folder: pathlib.Path, edit: t.Callable[[dict], None] = lambda manifest: None,
                 data: pathlib.Path | None = None, *, runnable: bool = True) -> pathlib.Path:
    """A Meltano project in `folder` sharing this one's installed plugins, with meltano.yml edited
    (runnable: Meltano accepts it, and its system database is created)."""
    manifest = yaml.safe_load((PROJECT_DIR / "meltano.yml").read_text(encoding="utf-8"))
    edit(manifest)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meltano.yml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    for name in SHARED:
        (folder / name).symlink_to(PROJECT_DIR / name)
    (folder / "data").symlink_to(data or PROJECT_DIR / "data")
    for kind in ("extractors", "loaders", "utilities"):
        (folder / ".meltano" / kind).parent.mkdir(exist_ok=True)
        (folder / ".meltano" / kind).symlink_to(PROJECT_DIR / ".meltano" / kind)
    (folder / "logs").mkdir()
    if runnable:
        create_system_database(folder)
    return folder


def create_system_database(project: pathlib.Path, env: dict[str, str] | None = None) -> None:
    """Meltano's system database, as `make install` leaves it: two loads starting at once on a new
    one would both try to create it."""
    subprocess.run([str(PROJECT_DIR / ".venv" / "bin" / "meltano"), "state", "list"], cwd=project,
                   env={**os.environ, **(env or {})}, capture_output=True, check=True, timeout=120)


def every_minute(manifest: dict) -> None:
    for schedule in manifest["schedules"]:
        schedule["interval"] = "* * * * *"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: t.Callable[[], t.Any], timeout: float, what: str, every: float = 1.0) -> t.Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def module_warehouse(server: Server) -> t.Iterator[Warehouse]:  # noqa: F811 (the shared server fixture)
    """One schema for a module whose tests share one Dagster (and its runs)."""
    schema = f"dg_{uuid.uuid4().hex[:10]}"
    yield Warehouse(server, schema)
    drop_schemas(server, schema, f"{schema}_elt")


def drop_schemas(server: Server, *schemas: str) -> None:  # noqa: F811
    with psycopg.connect(**server.database("public").params, autocommit=True) as connection:
        for name in schemas:
            connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def api() -> t.Iterator[SandboxHTTPServer]:
    with SandboxHTTPServer(Sandbox(seed=7, users=300, notes=1500, faults=Faults())) as running:
        yield running


def pipeline_env(schema: Warehouse, api_server: SandboxHTTPServer) -> dict[str, str]:
    """What a user's .env would hold for this schema and sandbox."""
    return {**schema.server.env, "DB_SCHEMA": schema.schema, "API_URL": api_server.url, "API_KEY": SANDBOX_API_KEY,
            "API_EMAIL": SANDBOX_EMAIL, "API_PASSWORD": SANDBOX_PASSWORD, "TAP_WISEROCK_API_RETRY_WAIT_MS": "50"}


class Receiver(http.server.ThreadingHTTPServer):
    """A local webhook: keeps every JSON body POSTed to it."""

    daemon_threads = True

    def __init__(self) -> None:
        received: list[dict] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: t.Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.received = received
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hooks/secret-token"
        threading.Thread(target=self.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver() -> t.Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.shutdown()
    hook.server_close()


class Orchestra:
    """`make orchestrate` (orchestrate/serve.py) for a project, driven through its GraphQL API."""

    def __init__(self, project: pathlib.Path, env: dict[str, str], log: pathlib.Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = project / ".dagster"
        self.env = {**os.environ, **env, "MELTANO_PROJECT_ROOT": str(project), "DAGSTER_PORT": str(self.port),
                    "DAGSTER_HOME": str(self.home)}
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(SERVE, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        wait_for(lambda: self.process.poll() is not None or "is up:" in log.read_text(), 240, "make orchestrate to start")
        assert self.process.poll() is None, log.read_text()[-3000:]
        self.processes = [self.process, *psutil.Process(self.process.pid).children(recursive=True)]

    def graphql(self, query: str, **variables: t.Any) -> dict:
        answer = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60).json()
        assert "errors" not in answer, answer
        return answer["data"]

    def runs(self) -> list[dict]:
        """Every run, newest first: id, status, tags, times (seconds since the epoch)."""
        return self.graphql("{ runsOrError { ... on Runs { results { runId status jobName startTime endTime "
                            "creationTime tags { key value } } } } }")["runsOrError"]["results"]

    def run(self, run_id: str) -> dict:
        return next(run for run in self.runs() if run["runId"] == run_id)

    def wait_for_status(self, run_id: str, statuses: set[str], timeout: float) -> dict:
        return wait_for(lambda: (run := self.run(run_id))["status"] in statuses and run, timeout,
                        f"run {run_id} to be {'/'.join(sorted(statuses))}")

    def launch(self, job: str) -> str:
        data = self.graphql("""mutation($job: String!) { launchRun(executionParams: {selector: {
            repositoryLocationName: "wiserock-elt", repositoryName: "__repository__", jobName: $job}}) {
            __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""", job=job)
        assert data["launchRun"]["__typename"] == "LaunchRunSuccess", data
        return data["launchRun"]["run"]["runId"]

    def set_schedule(self, name: str, running: bool) -> None:
        selector = {"repositoryLocationName": "wiserock-elt", "repositoryName": "__repository__", "scheduleName": name}
        if running:
            self.graphql("mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename } }",
                         s=selector)
        else:
            origin = self.graphql("query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) "
                                  "{ ... on Schedule { id scheduleState { id } } } }", s=selector)
            state_id = origin["scheduleOrError"]["scheduleState"]["id"]
            self.graphql("mutation($id: String!) { stopRunningSchedule(id: $id) { __typename } }", id=state_id)

    def logs(self, run_id: str) -> list[dict]:
        """The run's events: message, timestamp (ms), step key, event type."""
        events, cursor = [], None
        while True:
            data = self.graphql("""query($id: ID!, $after: String) { logsForRun(runId: $id, afterCursor: $after) {
                ... on EventConnection { cursor hasMore events { __typename ... on MessageEvent {
                message timestamp stepKey level } ... on ExecutionStepFailureEvent { error { message } } } } } }""",
                                id=run_id, after=cursor)["logsForRun"]
            events += data["events"]
            cursor = data["cursor"]
            if not data["hasMore"]:
                return events

    def why(self, run_id: str) -> str:
        """The run's errors and last lines, for an assertion's message."""
        events = self.logs(run_id)
        errors = [event["error"]["message"] for event in events if event.get("error")]
        return "\n".join([*errors, *(event.get("message") or "" for event in events[-15:])])

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns its exit status."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(120)
        finally:
            kill_all(self.processes)


def meltano_session(orchestra: Orchestra, run_id: str, load: str = "tap-wiserock-api target-postgres") -> list[int]:
    """The processes of one load of the run: Meltano's process group (Meltano, the tap, the loader),
    found from the step's line `meltano run <load>: pid N, in a process group of its own`."""
    (leader,) = [int(match[1]) for event in orchestra.logs(run_id)
                 if (match := re.match(rf"meltano run {load}: pid (\d+)", event.get("message") or ""))]
    group = []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(process.pid) == leader:
                group.append(process.pid)
    assert len(group) >= 3, group  # meltano, the tap, the loader
    return group


def kill_all(processes: list[t.Any]) -> None:
    """Whatever of these is still alive (after a failed test): SIGKILL, with its children."""
    for process in processes:
        with contextlib.suppress(psutil.Error, ProcessLookupError, AttributeError):
            found = psutil.Process(process.pid)
            for child in found.children(recursive=True):
                child.kill()
            found.kill()


def alive(pids: t.Iterable[int]) -> list[int]:
    return [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
