"""Transient faults are retried with bounded backoff; every row still arrives once."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import assert_same_rows, run_tap, tap_config


def assert_complete(run, server) -> None:
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("user"), server.sandbox.rows("user"))
    assert_same_rows(run.records("note"), server.sandbox.rows("note"))


def test_token_renewed_before_it_expires(start_sandbox, tmp_path):
    server = start_sandbox(users=200, notes=200, token_lifetime=2, latency=0.1)
    # ~42 reads one at a time, over 4 s (in parallel the run would end before the token expires)
    run = run_tap(tmp_path, tap_config(server, page_size=10, parallel_requests=1))
    assert_complete(run, server)
    assert server.sandbox.stats.logins == 1
    assert server.sandbox.stats.refreshes >= 1
    assert server.sandbox.stats.statuses[401] == 0  # renewed ahead of time, never rejected


@pytest.mark.parametrize("code", ["PGRST303", "PGRST301"])
def test_token_expired_mid_run_is_renewed_and_the_page_retried(start_sandbox, tmp_path, code):
    server = start_sandbox(jwt_expired_code=code)
    server.sandbox.faults.on_request[3] = lambda sandbox: sandbox.expire_tokens()
    # One request at a time: exactly one sees the expiry (test_parallel.py has several at once).
    run = run_tap(tmp_path, tap_config(server, page_size=100, parallel_requests=1))
    assert_complete(run, server)
    assert server.sandbox.stats.statuses[401] == 1
    assert server.sandbox.stats.logins + server.sandbox.stats.refreshes == 2


def test_429_waits_for_retry_after(start_sandbox, tmp_path):
    server = start_sandbox(users=200, notes=200, rate_limit_every=4, retry_after=1)
    # One request at a time: the answer after a 429 is its retry (test_ranges.py has the parallel case).
    run = run_tap(tmp_path, tap_config(server, page_size=50, parallel_requests=1))
    assert_complete(run, server)
    log = server.sandbox.stats.read_log
    waits = [later[0] - earlier[0] for earlier, later in itertools.pairwise(log) if earlier[1] == 429]
    assert waits, "the fault never fired"
    assert min(waits) >= 1.0  # retry_wait_ms is 10: only Retry-After explains the wait


@pytest.mark.parametrize("status", [503, 520, 522, 524])
def test_5xx_and_cloudflare_html_errors_are_retried(start_sandbox, tmp_path, status):
    server = start_sandbox(error_every=3, error_status=status, retry_after=0)
    run = run_tap(tmp_path, tap_config(server, page_size=200))
    assert_complete(run, server)
    assert server.sandbox.stats.statuses[status] >= 2


def test_dropped_connections_are_retried(start_sandbox, tmp_path):
    server = start_sandbox(drop_every=4)
    run = run_tap(tmp_path, tap_config(server, page_size=200))
    assert_complete(run, server)
    assert server.sandbox.stats.statuses[0] >= 2


def test_persistent_failure_gives_up_after_max_attempts_with_one_line(start_sandbox, tmp_path):
    server = start_sandbox(error_every=1, error_status=520)
    run = run_tap(tmp_path, tap_config(server, max_attempts=3))
    assert run.returncode != 0
    assert server.sandbox.stats.reads == 3  # bounded: no retry storm
    assert run.last_error_line.startswith("tap-wiserock-api: error:")
    assert "HTTP 520" in run.last_error_line and "table 'user'" in run.last_error_line
    assert "Traceback" not in run.stderr
