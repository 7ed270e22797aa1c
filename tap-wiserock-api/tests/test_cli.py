"""Standalone use: --about, --discover, --catalog, --config ENV, ACTIVATE_VERSION."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_same_rows, run_tap, tap_config
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD


def test_about_lists_settings_and_marks_secrets(tmp_path):
    run = run_tap(tmp_path, None, "--about", "--format", "json")
    about = json.loads(run.stdout)
    settings = about["settings"]["properties"]
    assert {"api_url", "api_key", "email", "password", "page_size"} <= set(settings)
    assert settings["password"].get("secret") and settings["api_key"].get("secret")
    assert settings["page_size"]["default"] == 1000
    assert all(prop.get("description") and prop.get("title") for name, prop in settings.items()
               if name in {"api_url", "api_key", "email", "password", "page_size"})


def test_discover_describes_both_tables_from_their_rows(start_sandbox, tmp_path):
    server = start_sandbox(users=5, notes=5)
    catalog = json.loads(run_tap(tmp_path, tap_config(server), "--discover").stdout)
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert list(streams) == ["user", "note"]
    for stream in streams.values():
        assert stream["key_properties"] == ["id"]
        assert stream["schema"]["properties"]["id"]["type"] == ["integer"]
        assert stream["schema"]["properties"]["activeflag"]["type"] == ["boolean", "null"]
        assert stream["schema"]["properties"]["created_at"]["format"] == "date-time"
    assert list(streams["note"]["schema"]["properties"]) == list(server.sandbox.rows("note")[0])
    assert server.sandbox.stats.logins == 1 and server.sandbox.stats.reads == 2  # one login, a first page per table


@pytest.mark.parametrize("prefix", ["", "stg_wiserock_"], ids=["no stream map", "the project's alias map"])
def test_catalog_selects_streams(start_sandbox, tmp_path, prefix):
    server = start_sandbox(users=50, notes=80)
    maps = {"stream_maps": {"*": {"__alias__": f"'{prefix}' + __stream_name__"}}} if prefix else {}
    catalog = json.loads(run_tap(tmp_path, tap_config(server, **maps), "--discover").stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "note"
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    run = run_tap(tmp_path, tap_config(server, **maps), "--catalog", str(tmp_path / "catalog.json"))
    assert run.returncode == 0, run.stderr
    assert {message["stream"] for message in run.messages if "stream" in message} == {f"{prefix}note"}
    assert_same_rows(run.records(f"{prefix}note"), server.sandbox.rows("note"))


def test_config_from_environment_and_dotenv(start_sandbox, tmp_path):
    server = start_sandbox(users=40, notes=40)
    # Part from the process environment, part from .env in the working directory.
    (tmp_path / ".env").write_text(f"TAP_WISEROCK_API_PASSWORD={SANDBOX_PASSWORD}\nTAP_WISEROCK_API_EMAIL={SANDBOX_EMAIL}\n")
    env = {"TAP_WISEROCK_API_API_URL": server.url, "TAP_WISEROCK_API_API_KEY": SANDBOX_API_KEY}
    run = run_tap(tmp_path, None, "--config", "ENV", env=env)
    assert run.returncode == 0, run.stderr
    assert_same_rows(run.records("user"), server.sandbox.rows("user"))


def test_activate_version_follows_each_streams_last_record(start_sandbox, tmp_path):
    server = start_sandbox(users=120, notes=150)
    run = run_tap(tmp_path, tap_config(server, page_size=50, emit_activate_version_messages=True))
    assert run.returncode == 0, run.stderr
    for stream in ("user", "note"):
        positions = [i for i, m in enumerate(run.messages) if m.get("stream") == stream]
        kinds = [run.messages[i]["type"] for i in positions]
        assert kinds.count("ACTIVATE_VERSION") == 1
        activation = run.messages[positions[kinds.index("ACTIVATE_VERSION")]]
        last_record = max(i for i in positions if run.messages[i]["type"] == "RECORD")
        assert positions[kinds.index("ACTIVATE_VERSION")] > last_record
        assert {run.messages[i]["version"] for i in positions if run.messages[i]["type"] == "RECORD"} == {
            activation["version"]}


def test_no_activate_version_for_a_stream_that_fails_midway(start_sandbox, tmp_path):
    server = start_sandbox(users=300, notes=50)
    # Reads 1-3: each table's first page (discovery) and user's highest key (its ranges' cuts); then every read fails.
    server.sandbox.faults.on_request[4] = lambda sandbox: setattr(sandbox.faults, "error_every", 1)
    run = run_tap(tmp_path, tap_config(server, page_size=50, max_attempts=2, emit_activate_version_messages=True))
    assert run.returncode != 0
    assert 0 < len(run.records("user")) < 300
    assert run.of_type("ACTIVATE_VERSION") == []
