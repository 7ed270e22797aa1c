"""End-to-end fixtures: a real PostgreSQL, a schema per test, the sandbox, and `meltano run`."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import subprocess
import sys
import typing as t
import uuid

import psycopg
import pytest
from psycopg import sql

from elt.database import scratch_server_env, stop_embedded
from elt.settings import PROJECT_DIR, Database
from wiserock_sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_EMAIL,
    SANDBOX_PASSWORD,
    Faults,
    Sandbox,
    SandboxHTTPServer,
)
from wiserock_sandbox.variants import PINNED_NOTE, unlike_sample

MELTANO = pathlib.Path(sys.executable).with_name("meltano")
BATCH_DIR = PROJECT_DIR / ".meltano" / "run" / "batches"  # meltano.yml: the taps' batch_config


def batch_files() -> set[str]:
    return {path.name for path in BATCH_DIR.glob("*")} if BATCH_DIR.exists() else set()


@dataclasses.dataclass
class Server:
    """The PostgreSQL the tests load into, as the environment variables that name it."""

    env: dict[str, str]

    def database(self, schema: str) -> Database:
        return Database.from_env({**self.env, "DB_SCHEMA": schema})


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Server]:
    """The server named by DB_HOST, else 127.0.0.1:5432 when it answers, else an embedded one."""
    folder = tmp_path_factory.mktemp("embedded")
    yield Server(scratch_server_env(dict(os.environ), folder))
    stop_embedded(folder)


@dataclasses.dataclass
class Warehouse:
    """One test's schema on the server, with SQL helpers."""

    server: Server
    schema: str

    @property
    def database(self) -> Database:
        return self.server.database(self.schema)

    def query(self, statement: str, *params: t.Any) -> list[tuple]:
        with psycopg.connect(**self.database.params, autocommit=True) as connection:
            connection.execute(sql.SQL("set search_path to {}").format(sql.Identifier(self.schema)))
            cursor = connection.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []

    def count(self, table: str) -> int:
        return self.query(f"select count(*) from {table}")[0][0]

    def ids(self, table: str, key: str = "id") -> list[int]:
        return [row[0] for row in self.query(f"select {key} from {table} order by {key}")]

    def fingerprint(self, table: str) -> tuple[int, str]:
        """Row count and a checksum of every row and value: equal only for the same snapshot."""
        return self.query(f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {table} t")[0]

    def column_types(self, table: str) -> dict[str, str]:
        rows = self.query("select column_name, data_type from information_schema.columns "
                          "where table_schema = %s and table_name = %s", self.schema, table)
        return dict(rows)


@contextlib.contextmanager
def scratch_schema(server: Server) -> t.Iterator[Warehouse]:
    """A schema of its own for one test, dropped after it (with the report's `_elt` schema)."""
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    yield Warehouse(server, schema)
    with psycopg.connect(**server.database(schema).params, autocommit=True) as connection:
        for name in (schema, f"{schema}_elt"):
            connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


@pytest.fixture
def warehouse(server: Server) -> t.Iterator[Warehouse]:
    with scratch_schema(server) as house:
        yield house


@pytest.fixture
def second_warehouse(server: Server) -> t.Iterator[Warehouse]:
    """Another schema, for the same load in another way (RECORD and BATCH modes)."""
    with scratch_schema(server) as house:
        yield house


@pytest.fixture
def sandbox() -> t.Iterator[SandboxHTTPServer]:
    with SandboxHTTPServer(Sandbox(seed=5, users=300, notes=1500, faults=Faults())) as server:
        yield server


@pytest.fixture
def unlike() -> t.Iterator[SandboxHTTPServer]:
    """The sandbox serving tables unlike the sample's (wiserock_sandbox.variants), and the view pinned_note."""
    with SandboxHTTPServer(Sandbox(tables=[*unlike_sample(), (PINNED_NOTE, None)], faults=Faults())) as server:
        yield server


def pipeline_env(warehouse: Warehouse, sandbox: SandboxHTTPServer | None, **extra: str) -> dict[str, str]:
    """What a user's .env would hold, plus test-speed retry settings; `extra` wins (e.g. another API_KEY)."""
    env = {**os.environ, **warehouse.server.env, "DB_SCHEMA": warehouse.schema, "TAP_WISEROCK_API_RETRY_WAIT_MS": "50"}
    if sandbox is not None:
        env.update(API_URL=sandbox.url, API_KEY=SANDBOX_API_KEY, API_EMAIL=SANDBOX_EMAIL, API_PASSWORD=SANDBOX_PASSWORD)
    return {**env, **extra}


def meltano(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MELTANO), *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
