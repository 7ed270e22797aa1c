"""`wiserock-elt run` (what `make run` calls): the whole job, on a laptop or a server.

With no DB_HOST it starts the embedded PostgreSQL; with no API_URL it starts the sandbox.
It reruns the job a bounded number of times when the database blipped (a connection reset,
a restart): each run replaces the tables wholesale, so a rerun converges.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import typing as t

from elt.database import (
    EMBEDDED_DATA_DIR,
    connection_problem,
    embedded_running,
    psql_url,
    start_embedded,
    stop_embedded,
)
from elt.settings import DEFAULT_SCHEMA, PROJECT_DIR, Database, project_env

JOB = "wiserock-load"
MELTANO_HINT = f".venv/bin/meltano run --force {JOB}"
ATTEMPTS = 3
RETRY_WAIT_SECONDS = (5, 20)
# Failures worth a rerun: the database went away or restarted, not bad data or credentials.
TRANSIENT_DATABASE_ERROR = re.compile(
    r"server closed the connection unexpectedly|connection reset|ssl syscall error|eof detected|"
    r"ssl connection has been closed unexpectedly|terminating connection due to administrator command|"
    r"the database system is (starting up|shutting down|in recovery mode)|connection refused|"
    r"could not receive data from server|consuming input failed",
    re.IGNORECASE,
)


def log(message: str) -> None:
    print(f"wiserock-elt: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def sandbox_api(env: dict[str, str]) -> t.Iterator[None]:
    """Serve the sandbox on a free local port for the length of the run."""
    from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD

    with tempfile.TemporaryDirectory() as folder:
        url_file = pathlib.Path(folder) / "url"
        process = subprocess.Popen([sys.executable, "-m", "wiserock_sandbox.cli", "--url-file", str(url_file)],
                                   stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not url_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("wiserock-elt: error: the API sandbox did not start")
                time.sleep(0.1)
            env.update(API_URL=url_file.read_text(), API_KEY=SANDBOX_API_KEY, API_EMAIL=SANDBOX_EMAIL,
                       API_PASSWORD=SANDBOX_PASSWORD)
            log(f"no API_URL configured: using the local sandbox at {env['API_URL']}")
            yield
        finally:
            process.terminate()
            process.wait(timeout=10)


def run_job(env: dict[str, str]) -> tuple[int, str | None, bool]:
    """Run the Meltano job once: its exit code, a transient database error if one was seen,
    and whether Meltano refused because another run of the job looks alive."""
    meltano = pathlib.Path(sys.executable).with_name("meltano")
    process = subprocess.Popen([str(meltano), "run", JOB], cwd=PROJECT_DIR, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if process.stdout is None:  # stdout=PIPE always gives one; this satisfies the type checker
        raise RuntimeError("no pipe from meltano")
    transient: str | None = None
    refused = False
    for line in process.stdout:
        sys.stderr.write(line)
        if match := TRANSIENT_DATABASE_ERROR.search(line):
            transient = match[0]
        refused = refused or "pipeline is already running" in line
    return process.wait(), transient, refused


@contextlib.contextmanager
def local_services(project_dir: pathlib.Path = PROJECT_DIR, *, keep_database: bool = True,
                   ) -> t.Iterator[tuple[dict[str, str], Database]]:
    """The environment a job needs, with what is not configured started locally for as long as
    the block lasts: the embedded PostgreSQL with no DB_HOST, the sandbox with no API_URL;
    DB_SCHEMA defaults to `wiserock`. An unreachable database is one line. The embedded server
    stays up afterwards (to look at the tables) unless `keep_database` is false and this block
    started it (a service such as `make orchestrate` stops what it started)."""
    configured = project_env(project_dir)
    env = dict(os.environ)
    started_database = False
    if not configured.get("DB_HOST"):
        started_database = not embedded_running(project_dir)
        env.update(start_embedded(project_dir))
        log(f"no DB_HOST configured: using the embedded PostgreSQL in {project_dir / EMBEDDED_DATA_DIR}")
    try:
        if not configured.get("DB_SCHEMA"):
            env["DB_SCHEMA"] = DEFAULT_SCHEMA
        database = Database.from_env({**configured, **env})
        if problem := connection_problem(database):
            raise SystemExit(f"wiserock-elt: error: {problem}")
        with sandbox_api(env) if not configured.get("API_URL") else contextlib.nullcontext():
            yield env, database
    finally:
        if started_database and not keep_database:
            stop_embedded(project_dir)
            log("stopped the embedded PostgreSQL it had started (its data stays in "
                f"{project_dir / EMBEDDED_DATA_DIR}; make run starts it again)")


def run(attempts: int = ATTEMPTS) -> int:
    with local_services() as (env, database):
        for attempt in range(1, attempts + 1):
            code, transient, refused = run_job(env)
            if code == 0:
                log(f"done. Look at the tables: psql '{psql_url(database)}' (schema {database.schema})")
                return 0
            if refused:
                log("error: Meltano sees another run of this job (a run that was killed looks alive for "
                    f"5 minutes): wait, or if none is running: {MELTANO_HINT}")
                return code
            if transient is None:
                log(f"error: the job failed (exit {code}); the load that failed changed nothing: its tables are "
                    "exactly as its last good run left them. Details above and in logs/meltano.log")
                return code
            if attempt < attempts:
                wait = RETRY_WAIT_SECONDS[min(attempt - 1, len(RETRY_WAIT_SECONDS) - 1)]
                log(f"the database at {database.label} failed ({transient}); rerunning the job in {wait} s "
                    f"(attempt {attempt + 1} of {attempts})")
                time.sleep(wait)
        log(f"error: the database at {database.label} kept failing ({transient}) after {attempts} attempts; "
            "the load that failed changed nothing: its tables are exactly as its last good run left them")
        return code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wiserock-elt", description=__doc__)
    parser.add_argument("command", choices=["run", "stop-db"])
    parser.add_argument("--attempts", type=int, default=ATTEMPTS, help="reruns on transient database errors")
    args = parser.parse_args(argv)
    if args.command == "stop-db":
        log("embedded PostgreSQL stopped" if stop_embedded(PROJECT_DIR) else "no embedded PostgreSQL is running")
        return
    sys.exit(run(args.attempts))


if __name__ == "__main__":
    main()
