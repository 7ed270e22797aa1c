"""A pytest fixture for the packages tested against the sandbox: import it into a conftest.py.

Imports pytest, so only test code imports this module.
"""

from __future__ import annotations

import typing as t

import pytest

from wiserock_sandbox.server import SandboxHTTPServer
from wiserock_sandbox.state import Faults, Sandbox


@pytest.fixture
def start_sandbox() -> t.Iterator[t.Callable[..., SandboxHTTPServer]]:
    """`start_sandbox(users=..., notes=..., tables=None, note_key="bigint", **faults)` serves a fresh
    sandbox (the sample tables, or `tables`: (TableDef, rows) pairs); all stop after the test.
    `faults` are `Faults` fields, e.g. `max_in_flight=2` (then `server.sandbox.stats.refused_in_flight`
    counts the reads answered 429 and `max_reads_in_flight` the most served at once)."""
    servers: list[SandboxHTTPServer] = []

    def start(*, users: int = 300, notes: int = 1200, tables: t.Any = None, note_key: str = "bigint",
              **faults: t.Any) -> SandboxHTTPServer:
        sandbox = Sandbox(seed=11, users=users, notes=notes, faults=Faults(**faults), tables=tables, note_key=note_key)
        server = SandboxHTTPServer(sandbox).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
