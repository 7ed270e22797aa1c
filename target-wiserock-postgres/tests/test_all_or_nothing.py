"""Contract 2: the tables of one run change together at one commit, once every stream that
started has completed; anything else (input ends early, bad data, a kill) changes nothing."""

from __future__ import annotations

import signal
import time

import pytest

from target_wiserock_postgres.errors import LoadError
from tests.conftest import (
    activate,
    error_line,
    finish,
    load,
    record,
    run_cli,
    schema,
    send,
    snapshot,
    start,
    wait_for_copy,
)

PREVIOUS = [*snapshot("alpha", [{"id": 1, "v": "old"}], id="integer", v="string"),
            *snapshot("beta", [{"id": 1, "v": "old"}, {"id": 2, "v": "old"}], id="integer", v="string")]


def new_run(*, beta_complete: bool = True) -> list[dict]:
    alpha = snapshot("alpha", [{"id": 1, "v": "new"}, {"id": 3, "v": "new"}], id="integer", v="string")
    beta = snapshot("beta", [{"id": 2, "v": "new"}], id="integer", v="string")
    return alpha + (beta if beta_complete else beta[:-1])


def assert_previous(warehouse) -> None:
    assert warehouse.rows("alpha") == [(1, "old")]
    assert warehouse.rows("beta") == [(1, "old"), (2, "old")]


def test_all_tables_change_at_the_end(warehouse):
    load(warehouse, PREVIOUS)
    load(warehouse, new_run())
    assert (warehouse.rows("alpha"), warehouse.rows("beta")) == ([(1, "new"), (3, "new")], [(2, "new")])


def test_input_that_ends_early_changes_nothing(warehouse):
    load(warehouse, PREVIOUS)
    result = run_cli(warehouse, new_run(beta_complete=False))
    line = error_line(result)
    assert "stream 'beta' did not complete, so nothing was changed" in line
    assert "emit_activate_version_messages" in line and "complete_streams_at_end_of_input" in line
    assert "'alpha'" not in line
    assert_previous(warehouse)


def test_state_is_passed_on_only_after_the_commit(warehouse):
    state = {"type": "STATE", "value": {"bookmarks": {"beta": {"n": 1}}}}
    failed = run_cli(warehouse, [*new_run(beta_complete=False), state])
    assert failed.returncode == 1 and failed.stdout == ""
    done = run_cli(warehouse, [*new_run(), state])
    assert done.returncode == 0 and done.stdout.splitlines() == ['{"bookmarks": {"beta": {"n": 1}}}']


def test_a_new_table_is_not_created_by_a_failed_run(warehouse):
    result = run_cli(warehouse, [schema("gamma", id="integer"), record("gamma", id=1)])
    assert "stream 'gamma' did not complete" in error_line(result)
    assert not warehouse.exists("gamma")


def test_activate_version_before_the_records_proves_nothing(warehouse):
    """singer-sdk taps send ACTIVATE_VERSION when a stream starts: the records after it make
    the stream incomplete again."""
    load(warehouse, PREVIOUS)
    sdk_style = [schema("beta", id="integer", v="string"), activate("beta"), record("beta", id=9, v="new")]
    with pytest.raises(LoadError, match="records came after the ACTIVATE_VERSION of 'beta'"):
        load(warehouse, sdk_style)
    assert_previous(warehouse)


def test_streams_complete_at_end_of_input_when_set(warehouse):
    """For taps that never send ACTIVATE_VERSION: a clean end of input completes every stream."""
    load(warehouse, PREVIOUS)
    load(warehouse, [schema("beta", id="integer", v="string"), record("beta", id=9, v="new")],
         complete_streams_at_end_of_input=True)
    assert warehouse.rows("beta") == [(9, "new")]
    assert warehouse.rows("alpha") == [(1, "old")]  # a stream not in the run is left alone


def test_a_failure_in_a_later_table_leaves_the_earlier_ones(warehouse):
    """alpha is merged before beta; beta's duplicate key rolls alpha back too."""
    load(warehouse, PREVIOUS)
    bad_beta = snapshot("beta", [{"id": 5, "v": "x"}, {"id": 5, "v": "y"}], id="integer", v="string")
    result = run_cli(warehouse, new_run()[:4] + bad_beta)
    assert "table beta: duplicate key (id)=(5)" in error_line(result)
    assert_previous(warehouse)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_loader_changes_nothing(warehouse, how):
    load(warehouse, PREVIOUS)
    process = start(warehouse)
    send(process, new_run()[:4] + [schema("beta", id="integer", v="string")]
         + [record("beta", id=n, v="new") for n in range(10, 20_010)])
    wait_for_copy(warehouse)
    process.send_signal(how)
    result = finish(process)
    if how == signal.SIGKILL:
        assert result.returncode == -signal.SIGKILL
    else:
        assert f"stopped by signal {how.name}: the transaction was rolled back" in error_line(result)
    assert_previous(warehouse)
    deadline = time.monotonic() + 10  # the server notices a killed client's closed socket at its next read
    while warehouse.query("select 1 from pg_stat_activity where application_name = %s and datname = %s",
                          warehouse.application_name, warehouse.server["database"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert warehouse.exists("alpha") and warehouse.query("select count(*) from pg_locks l join pg_class c "
                                                          "on c.oid = l.relation where c.relname = 'beta'") == [(0,)]
