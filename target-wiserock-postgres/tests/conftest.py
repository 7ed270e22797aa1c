"""A real PostgreSQL, a schema per test, and the loader run in-process or as users run it."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import time
import typing as t
import uuid

import psycopg
import pytest
from psycopg import sql

from elt.database import scratch_server_env, stop_embedded
from elt.settings import Database
from target_wiserock_postgres.target import EXPECTED_FAILURES, TargetWiseRockPostgres

if t.TYPE_CHECKING:
    import pathlib

PROGRAM = "target-wiserock-postgres"
# Shorthands for the SCHEMA messages of the tests.
TYPES: dict[str, dict[str, t.Any]] = {
    "integer": {"type": ["integer", "null"]}, "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]}, "string": {"type": ["string", "null"]},
    "date": {"type": ["string", "null"], "format": "date"},
    "date-time": {"type": ["string", "null"], "format": "date-time"},
    "object": {"type": ["object", "null"]}, "array": {"type": ["array", "null"]},
}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, t.Any]]:
    """Connection settings of the server named by DB_HOST, else 127.0.0.1:5432, else an embedded one."""
    folder = tmp_path_factory.mktemp("embedded")
    params = Database.from_env({**scratch_server_env(dict(os.environ), folder), "DB_SCHEMA": "unused"}).params
    yield {"host": params.get("host"), "port": params.get("port", 5432), "user": params.get("user"),
           "password": params.get("password"), "database": params.get("dbname")}
    stop_embedded(folder)


@dataclasses.dataclass
class Warehouse:
    """One test's schema: the loader's settings for it, and SQL from another connection."""

    server: dict[str, t.Any]
    schema: str
    folder: pathlib.Path

    @property
    def application_name(self) -> str:
        """The name this test's loader processes give their connections (PGAPPNAME), so that a test
        watching or terminating them never touches another run's on the shared server."""
        return f"{PROGRAM} {self.schema}"

    @property
    def config(self) -> dict[str, t.Any]:
        """The loader's settings; the test's folder is its batch root (where the tests write batch files)."""
        return {**{k: v for k, v in self.server.items() if v is not None}, "default_target_schema": self.schema,
                "batch_roots": [str(self.folder)]}

    def settings(self, **changes: t.Any) -> dict[str, t.Any]:
        """`config` with `changes`; a change to None leaves that setting out."""
        return {k: v for k, v in {**self.config, **changes}.items() if v is not None}

    def connect(self, **kwargs: t.Any) -> psycopg.Connection:
        return psycopg.connect(host=self.server["host"], port=self.server["port"], user=self.server["user"],
                               password=self.server["password"], dbname=self.server["database"],
                               options=f"-c search_path={self.schema} -c TimeZone=UTC", **kwargs)

    def query(self, statement: str, *params: t.Any) -> list[tuple]:
        with self.connect(autocommit=True) as connection:
            cursor = connection.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []

    def rows(self, table: str, columns: str = "*", order: str = "1") -> list[tuple]:
        return self.query(sql.SQL("select {} from {} order by {}").format(
            sql.SQL(columns), sql.Identifier(self.schema, table), sql.SQL(order)).as_string())

    def column_types(self, table: str) -> dict[str, str]:
        return dict(self.query("select attname, format_type(atttypid, atttypmod) from pg_attribute "
                               "where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
                               f'"{self.schema}"."{table}"'))

    def exists(self, table: str) -> bool:
        return bool(self.query("select 1 from pg_tables where schemaname = %s and tablename = %s", self.schema, table))


@pytest.fixture
def warehouse(server: dict[str, t.Any], tmp_path: pathlib.Path) -> t.Iterator[Warehouse]:
    house = Warehouse(server, f"tw_{uuid.uuid4().hex[:10]}", tmp_path)
    yield house
    with house.connect(autocommit=True) as connection:
        connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(house.schema)))


# Singer messages


def schema(stream: str, keys: t.Sequence[str] = ("id",), **columns: str | dict[str, t.Any]) -> dict[str, t.Any]:
    properties = {name: TYPES[kind] if isinstance(kind, str) else kind for name, kind in columns.items()}
    return {"type": "SCHEMA", "stream": stream, "schema": {"type": "object", "properties": properties},
            "key_properties": list(keys)}


def record(stream: str, **values: t.Any) -> dict[str, t.Any]:
    return {"type": "RECORD", "stream": stream, "record": values}


def activate(stream: str) -> dict[str, t.Any]:
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": 1}


def snapshot(stream: str, rows: t.Iterable[dict[str, t.Any]], keys: t.Sequence[str] = ("id",),
             **columns: str | dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """A complete stream: SCHEMA, its records, then ACTIVATE_VERSION (as the project's taps send it)."""
    return [schema(stream, keys, **columns), *(record(stream, **row) for row in rows), activate(stream)]


def lines(messages: t.Iterable[dict[str, t.Any] | str]) -> bytes:
    return b"".join((m if isinstance(m, str) else json.dumps(m)).encode() + b"\n" for m in messages)


def load(house: Warehouse, messages: t.Iterable[dict[str, t.Any] | str], **settings: t.Any) -> None:
    """The loader in-process, as the SDK's test runner drives it; failures raise."""
    target = TargetWiseRockPostgres(config=house.settings(**settings))
    target.listen(io.BytesIO(lines(messages)))  # type: ignore[arg-type]


def failure(house: Warehouse, messages: t.Iterable[dict[str, t.Any] | str], **settings: t.Any) -> str:
    """The message of the expected failure of an in-process load (what the CLI prints after `error: `)."""
    try:
        load(house, messages, **settings)
    except EXPECTED_FAILURES as exc:
        return str(exc)
    raise AssertionError("the load did not fail")


def command(house: Warehouse, **settings: t.Any) -> list[str]:
    config = house.folder / f"config-{uuid.uuid4().hex[:6]}.json"
    config.write_text(json.dumps(house.settings(**settings)))
    # -W default: warnings Python hides by default (ResourceWarning of a connection left open)
    # would show after the error line, where users would read them.
    return [sys.executable, "-W", "default", "-m", "target_wiserock_postgres.target", "--config", str(config)]


def run_cli(house: Warehouse, messages: t.Iterable[dict[str, t.Any] | str], **settings: t.Any
            ) -> subprocess.CompletedProcess[str]:
    """The loader as users run it: a process reading stdin."""
    return subprocess.run(command(house, **settings), input=lines(messages).decode(), capture_output=True, text=True,
                          timeout=120, check=False, env=process_env(house))


def start(house: Warehouse, **settings: t.Any) -> subprocess.Popen[bytes]:
    """The loader as a process whose stdin the test writes (and holds open) itself."""
    return subprocess.Popen(command(house, **settings), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=process_env(house))


def process_env(house: Warehouse) -> dict[str, str]:
    return {**os.environ, "PGAPPNAME": house.application_name}


def send(process: subprocess.Popen[bytes], messages: t.Iterable[dict[str, t.Any] | str]) -> None:
    assert process.stdin is not None
    process.stdin.write(lines(messages))
    process.stdin.flush()


def wait_for_copy(house: Warehouse, timeout: float = 30) -> None:
    """Until the loader's connection is in a COPY (the rows of the test are streaming in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if house.query("select 1 from pg_stat_activity where application_name = %s and query ilike 'copy %%' "
                       "and state = 'active'", house.application_name):
            return
        time.sleep(0.05)
    raise AssertionError("the loader never started a COPY")


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Close stdin (end of input) and collect the result."""
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout.decode(), stderr.decode())


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's one line, the last of stderr; the test fails when there is no such line, a
    traceback, or anything printed after it (a warning about a connection or COPY left open)."""
    assert result.returncode != 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{PROGRAM}: error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == errors[0], result.stderr[-3000:]
    return errors[0]
