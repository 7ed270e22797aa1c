"""Fatal errors fail fast, in one line, with a non-zero exit; secrets never leak."""

from __future__ import annotations

import pytest

from tests.conftest import run_tap, tap_config
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_PASSWORD


def assert_one_line_failure(run, *fragments: str) -> None:
    assert run.returncode != 0
    assert run.last_error_line.startswith("tap-wiserock-api: error:"), run.stderr
    for fragment in fragments:
        assert fragment in run.last_error_line
    assert "Traceback" not in run.stderr


def test_invalid_credentials(start_sandbox, tmp_path):
    server = start_sandbox()
    run = run_tap(tmp_path, tap_config(server, password="not-the-password"))
    assert_one_line_failure(run, "login failed: invalid credentials", "HTTP 400")
    assert server.sandbox.stats.token_requests == 1  # no retry storm
    assert "not-the-password" not in run.stdout + run.stderr


@pytest.mark.parametrize("api_key", ["wrong-key", ""])
def test_missing_or_invalid_api_key(start_sandbox, tmp_path, api_key):
    server = start_sandbox()
    run = run_tap(tmp_path, tap_config(server, api_key=api_key))
    assert_one_line_failure(run, "HTTP 401", "api_key")
    assert server.sandbox.stats.token_requests == 1


def test_unknown_table_fails_before_any_message(start_sandbox, tmp_path):
    """Every table is discovered before the first message: a missing one fails the run before any
    stream starts, so a loader has nothing to commit."""
    server = start_sandbox()
    server.sandbox.drop_table("note")
    run = run_tap(tmp_path, tap_config(server, emit_activate_version_messages=True))
    assert_one_line_failure(run, "table 'note' not found", "HTTP 404", "PGRST205")
    assert server.sandbox.stats.statuses[404] == 1
    assert run.messages == []


@pytest.mark.parametrize(("config_text", "fragment"), [
    ('{"api_url": "http://127.0.0.1:9", "api_key": "k", "email": "e"}', "password"),
    ('{"api_url": "http://127.0.0.1:9", "api_key": "k", "email": "e", "password": "p", "page_size": 0}', "page_size"),
    ('{"api_url": ', "config"),
])
def test_malformed_config(tmp_path, config_text, fragment):
    (tmp_path / "bad.json").write_text(config_text)
    run = run_tap(tmp_path, None, "--config", str(tmp_path / "bad.json"))
    assert run.returncode != 0
    assert fragment in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_config_file(tmp_path):
    run = run_tap(tmp_path, None, "--config", str(tmp_path / "nope.json"))
    assert run.returncode != 0
    assert "nope.json" in run.stderr
    assert "Traceback" not in run.stderr


def test_unrecognised_flag_value_names_table_row_and_column(start_sandbox, tmp_path):
    server = start_sandbox(users=30, notes=30)
    row = server.sandbox.rows("user")[5]
    server.sandbox.replace_rows("user", [*server.sandbox.rows("user")[:5], {**row, "activeflag": "maybe"},
                                         *server.sandbox.rows("user")[6:]])
    run = run_tap(tmp_path, tap_config(server))
    assert_one_line_failure(run, "table 'user'", f"row id {row['id']}", "activeflag", "'maybe'")


def test_no_secret_in_any_output(start_sandbox, tmp_path):
    """A run that logs in, renews, retries and fails on purpose prints no secret."""
    server = start_sandbox(users=100, notes=100, rate_limit_every=5, retry_after=0, error_every=7)
    server.sandbox.faults.on_request[4] = lambda sandbox: sandbox.expire_tokens()
    ok = run_tap(tmp_path, tap_config(server, page_size=20), env={"LOGLEVEL": "DEBUG"})
    assert ok.returncode == 0, ok.stderr
    bad = run_tap(tmp_path, tap_config(server, password=SANDBOX_PASSWORD + "x"))
    output = ok.stdout + ok.stderr + bad.stdout + bad.stderr
    secrets = [SANDBOX_PASSWORD, SANDBOX_API_KEY, *server.sandbox.stats.issued_tokens]
    assert len(secrets) >= 6
    for secret in secrets:
        assert secret not in output


def test_nul_characters_are_dropped_from_text(start_sandbox, tmp_path):
    server = start_sandbox(users=5, notes=5)
    rows = server.sandbox.rows("note")
    rows[2]["title"] = "before\x00after"
    server.sandbox.replace_rows("note", rows)
    run = run_tap(tmp_path, tap_config(server))
    assert run.returncode == 0, run.stderr
    assert "\\u0000" not in run.stdout
    assert run.records("note")[2]["title"] == "beforeafter"
