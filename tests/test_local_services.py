"""What `make run` and `make orchestrate` start when nothing is configured: the embedded
PostgreSQL (left up after `make run`, to look at the tables; stopped with a service that started it)."""

from __future__ import annotations

import pytest

from elt.database import embedded_running, stop_embedded
from elt.run import local_services


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with no .env and nothing configured in the environment."""
    for key in ("DB_HOST", "DB_SCHEMA", "API_URL"):
        monkeypatch.delenv(key, raising=False)
    yield tmp_path
    stop_embedded(tmp_path)


def test_a_service_stops_the_embedded_database_it_started(project):
    with local_services(project, keep_database=False) as (env, database):
        assert embedded_running(project)
        assert env["API_URL"].startswith("http://127.0.0.1:")  # the sandbox, for as long as the block lasts
        assert database.schema == "wiserock"
    assert not embedded_running(project)


def test_make_run_leaves_it_up_and_a_service_leaves_one_it_found_running(project):
    with local_services(project):
        pass
    assert embedded_running(project)  # make run: up afterwards, `make stop-db` stops it
    with local_services(project, keep_database=False):
        pass
    assert embedded_running(project)  # it was up before the service started: not the service's to stop
