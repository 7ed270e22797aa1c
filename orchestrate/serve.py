"""`make orchestrate`: Dagster for this project, in the foreground, until Ctrl-C or SIGTERM.

Run by the project's Python (it reuses `wiserock-elt run`'s local services: with no DB_HOST the
embedded PostgreSQL, with no API_URL the sandbox, both kept up while Dagster runs); Dagster itself
runs from orchestrate/.venv. It starts, each in a session of its own:

- a code server for the project (`wiserock_dagster.definitions`), on a free local port;
- the web UI on 127.0.0.1:DAGSTER_PORT (3000) and the daemon (schedules, the run queue, sensors),
  both pointed at that code server.

Dagster's instance lives in DAGSTER_HOME (default orchestrate/.dagster): its dagster.yaml is written
at every start from the .env keys (storage on PostgreSQL with DAGSTER_PG_HOST, else SQLite there).
On Ctrl-C or SIGTERM the daemon stops first (no new run starts), runs in progress are cancelled
(their loads change nothing), then the web UI and the code server stop. Queued runs stay queued.

`make orchestrate-worker` (`serve.py worker`) runs one Celery worker for steps instead: a machine
that executes loads. It refuses in one line when the staging database is not configured: a
worker never starts a database of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request

import psycopg
import yaml
from psycopg import sql

from elt.database import connect
from elt.run import local_services
from elt.settings import Database, project_env
from wiserock_dagster.project import MELTANO_JOB_TAG, STAGING_DATABASE_SETTINGS, project_root  # no Dagster needed

ORCHESTRATE_DIR = pathlib.Path(__file__).resolve().parent
DAGSTER_BIN = ORCHESTRATE_DIR / ".venv" / "bin"
CELERY_CONFIG_DIR = ORCHESTRATE_DIR / "celery_worker"  # dagster_celery_config: the broker from the environment
LOCATION = "wiserock-elt"
STOP_SECONDS = 30
# Dagster's storage on PostgreSQL: .env key -> postgres_db field (values stay in the environment).
PG_SETTINGS = {"DAGSTER_PG_HOST": "hostname", "DAGSTER_PG_PORT": "port", "DAGSTER_PG_USER": "username",
               "DAGSTER_PG_PASSWORD": "password", "DAGSTER_PG_DB": "db_name"}
WORKER_SETTINGS = (*STAGING_DATABASE_SETTINGS, "DAGSTER_CELERY_BROKER_URL")


def say(message: str) -> None:
    print(f"wiserock-orchestrate: {message}", file=sys.stderr, flush=True)


def instance_config(env: t.Mapping[str, str]) -> dict[str, t.Any]:
    """dagster.yaml: one run at a time per Meltano job (later ones queue), and without Celery workers
    one run at a time in all (Meltano's runs of one plugin in one project must not overlap);
    storage; no telemetry."""
    queue: dict[str, t.Any] = {
        "tag_concurrency_limits": [{"key": MELTANO_JOB_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}],
        "dequeue_interval_seconds": 1}  # a tick's run starts within a second of its turn (default 5 s)
    if not env.get("DAGSTER_CELERY_BROKER_URL"):
        queue["max_concurrent_runs"] = 1
    config: dict[str, t.Any] = {
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator", "config": queue},
        "run_monitoring": {"enabled": True, "poll_interval_seconds": 30},
        "telemetry": {"enabled": False},
    }
    if env.get("DAGSTER_PG_HOST"):
        database: dict[str, t.Any] = {field: {"env": key} for key, field in PG_SETTINGS.items() if env.get(key)}
        database["scheme"] = "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3, which Dagster lacks
        if env.get("DAGSTER_PG_SCHEMA"):
            database["params"] = {"options": f"-c search_path={env['DAGSTER_PG_SCHEMA']}"}
        config["storage"] = {"postgres": {"postgres_db": database}}
    return config


def write_instance(home: pathlib.Path, env: t.Mapping[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    text = "# Written by orchestrate/serve.py at every start, from the .env keys: edit those.\n"
    (home / "dagster.yaml").write_text(text + yaml.safe_dump(instance_config(env), sort_keys=False), encoding="utf-8")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Processes:
    """What this command started, each in its own session; stopped in reverse order."""

    def __init__(self, env: dict[str, str], cwd: pathlib.Path) -> None:
        self.env = env
        self.cwd = cwd
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *argv: str) -> None:
        self.started[name] = subprocess.Popen([str(DAGSTER_BIN / argv[0]), *argv[1:]], cwd=self.cwd, env=self.env,
                                              start_new_session=True)

    def exited(self) -> str | None:
        return next((f"{name} exited (status {process.returncode})" for name, process in self.started.items()
                     if process.poll() is not None), None)

    def stop(self, name: str) -> None:
        process = self.started.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {STOP_SECONDS} s of SIGTERM: killing it")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.started)):
            self.stop(name)


class Web:
    """The web UI's GraphQL API, as the README shows it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def query(self, query: str, variables: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        request = urllib.request.Request(f"{self.url}/graphql", data=json.dumps(  # noqa: S310 (our own local URL)
            {"query": query, "variables": variables or {}}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.load(response)["data"]

    def ready(self) -> bool:
        try:
            return bool(self.query("{ version }").get("version"))
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            return False

    def runs_in_progress(self) -> list[str]:
        data = self.query("{ runsOrError(filter: {statuses: [STARTING, STARTED, CANCELING]}) "
                          "{ ... on Runs { results { runId } } } }")
        return [run["runId"] for run in data["runsOrError"].get("results", [])]

    def cancel(self, run_ids: list[str]) -> None:
        self.query("mutation($ids: [String!]!) { terminateRuns(runIds: $ids) { __typename } }", {"ids": run_ids})


class Stop(Exception):
    """Ctrl-C or SIGTERM arrived."""


def _raise_stop(signum: int, _frame: t.Any) -> t.NoReturn:
    raise Stop(signal.Signals(signum).name)


def cancel_runs(web: Web) -> None:
    """Cancel the runs in progress and wait (a while) until each has stopped its load."""
    try:
        runs = web.runs_in_progress()
        if not runs:
            return
        say(f"cancelling {len(runs)} run(s) in progress: {', '.join(runs)}")
        web.cancel(runs)
        deadline = time.monotonic() + STOP_SECONDS * 2
        while web.runs_in_progress() and time.monotonic() < deadline:
            time.sleep(1)
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        say(f"could not cancel the runs in progress through the web UI: {exc}")


def dagster_home(env: t.Mapping[str, str]) -> pathlib.Path:
    return pathlib.Path(env.get("DAGSTER_HOME") or ORCHESTRATE_DIR / ".dagster").resolve()


def create_storage_schema(env: t.Mapping[str, str]) -> None:
    """DAGSTER_PG_SCHEMA: Dagster creates its tables, not the schema that holds them."""
    if not (env.get("DAGSTER_PG_HOST") and env.get("DAGSTER_PG_SCHEMA")):
        return
    keys = {"DB_HOST": "DAGSTER_PG_HOST", "DB_PORT": "DAGSTER_PG_PORT", "DB_USER": "DAGSTER_PG_USER",
            "DB_PASSWORD": "DAGSTER_PG_PASSWORD", "DB_NAME": "DAGSTER_PG_DB", "DB_SCHEMA": "DAGSTER_PG_SCHEMA"}
    storage = Database.from_env({db_key: env[key] for db_key, key in keys.items() if env.get(key)})
    try:
        with connect(storage) as connection:
            connection.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(storage.schema)))
    except psycopg.Error as exc:
        raise SystemExit(f"wiserock-orchestrate: error: Dagster's storage at {storage.label}: "
                         f"{' '.join(str(exc).split())}") from None


def dagster_installed() -> None:
    if not (DAGSTER_BIN / "dagster").exists():
        raise SystemExit(f"wiserock-orchestrate: error: Dagster is not installed in {DAGSTER_BIN.parent}: "
                         "run `make install-orchestrate` (make orchestrate does)")


def serve() -> int:
    dagster_installed()
    root = project_root()
    port = int(project_env(root).get("DAGSTER_PORT") or 3000)
    if port_taken(port):
        raise SystemExit(f"wiserock-orchestrate: error: port {port} on 127.0.0.1 is in use (another Dagster?): "
                         "set DAGSTER_PORT")
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        with local_services(root, keep_database=False) as (env, _database):
            home = dagster_home(env)
            env.update(DAGSTER_HOME=str(home), MELTANO_PROJECT_ROOT=str(root), DAGSTER_PORT=str(port))
            settings = {**project_env(root), **env}
            create_storage_schema(settings)
            write_instance(home, settings)
            return run_dagster(Processes(env, root), Web(port), root, home)
    except Stop as stop:
        say(f"{stop}: stopped")
        return 0


def wait_for_port(port: int, processes: Processes) -> str | None:
    """None once something listens on the port; else why not (a process died, or it took too long)."""
    deadline = time.monotonic() + 300
    while not port_taken(port):
        if problem := processes.exited():
            return problem
        if time.monotonic() > deadline:
            return f"nothing listens on port {port} after 300 s"
        time.sleep(0.5)
    return None


def run_dagster(processes: Processes, web: Web, root: pathlib.Path, home: pathlib.Path) -> int:
    """Start the code server, then the web UI and the daemon; stay until a signal or until one of them dies."""
    code_port = free_port()
    workspace = home / "workspace.yaml"  # a fixed location name: schedule states and run history survive restarts
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {
        "host": "127.0.0.1", "port": code_port, "location_name": LOCATION}}]}), encoding="utf-8")
    try:
        processes.start("code server", "dagster", "code-server", "start", "--host", "127.0.0.1", "--port", str(code_port),
                        "--module-name", "wiserock_dagster.definitions", "--location-name", LOCATION)
        if problem := wait_for_port(code_port, processes):
            say(f"error: the code server did not start: {problem}; its error is above")
            return 1
        processes.start("web UI", "dagster-webserver", "--host", "127.0.0.1", "--port", str(web.port),
                        "--workspace", str(workspace), "--log-level", "warning")
        processes.start("daemon", "dagster-daemon", "run", "--workspace", str(workspace))
        while not web.ready():
            if problem := processes.exited():
                say(f"error: {problem} while starting; its error is above")
                return 1
            time.sleep(0.5)
        say(f"Dagster for the project in {root} is up: {web.url} (Ctrl-C stops it)")
        while not (problem := processes.exited()):
            time.sleep(0.5)
        say(f"error: {problem}; stopping the rest")
        return 1
    except Stop as stop:
        say(f"{stop}: stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the shutdown is not to be interrupted
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        processes.stop("daemon")  # no new run starts
        if "web UI" in processes.started and processes.started["web UI"].poll() is None:
            cancel_runs(web)
        processes.stop_all()
        say("stopped")


def worker(name: str | None) -> t.NoReturn:
    """Become one Celery worker (one step at a time): Celery's own signals then apply (Ctrl-C or
    SIGTERM: finish the step in progress, then exit)."""
    dagster_installed()
    root = project_root()
    env = {**os.environ, **project_env(root)}
    if missing := [key for key in WORKER_SETTINGS if not env.get(key)]:
        raise SystemExit(f"wiserock-orchestrate: error: {', '.join(missing)} not set (environment or .env): a worker "
                         "needs the staging database and the broker the scheduler uses; it starts no database of its own")
    if not env.get("DAGSTER_PG_HOST"):
        say("Dagster's storage is SQLite (no DAGSTER_PG_HOST): this worker must run on the scheduler's machine")
    env.update(MELTANO_PROJECT_ROOT=str(root), PYTHONPATH=str(CELERY_CONFIG_DIR), DAGSTER_HOME=str(dagster_home(env)))
    command = [str(DAGSTER_BIN / "celery"), "--app", "dagster_celery.app", "worker", "--prefetch-multiplier=1",
               "--concurrency=1", "--loglevel=INFO", f"--hostname={name or 'wiserock@%h'}"]
    os.chdir(root)
    os.execve(command[0], command, env)  # noqa: S606 (our own executable, in the foreground)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wiserock-orchestrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["serve", "worker"], default="serve")
    parser.add_argument("--name", help="the worker's Celery name (default wiserock@<host name>)")
    args = parser.parse_args(argv)
    if args.command == "worker":
        worker(args.name)
    sys.exit(serve())


if __name__ == "__main__":
    main()
