"""Discovery reads a file once: plans cached by fingerprint, a catalog that still fits is trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import typing as t

import pytest

from tests.conftest import run_tap, write

if t.TYPE_CHECKING:
    import pathlib


def discover(folder: pathlib.Path, **config: t.Any) -> tuple[dict, str]:
    config_file = folder.parent / "discover.json"
    config_file.write_text(json.dumps({"data_dir": str(folder), "cache_dir": str(folder.parent / "cache"), **config}))
    process = subprocess.run([sys.executable, "-m", "tap_wiserock_csv.tap", "--config", str(config_file), "--discover"],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout), process.stderr


def save(folder: pathlib.Path, catalog: dict) -> str:
    path = folder.parent / "catalog.json"
    path.write_text(json.dumps(catalog))
    return str(path)


def touch_later(path: pathlib.Path, text: str) -> None:
    time.sleep(0.01)  # a new modification time even on coarse clocks
    path.write_text(text)


def test_discovery_reuses_the_plan_of_an_unchanged_file_and_retypes_a_changed_one(folder):
    path = write(folder, "x.csv", "id,v\n1,10\n2,20\n")
    first, log = discover(folder)
    assert "Typed" in log
    second, log = discover(folder)
    assert "Typed" not in log and "Reusing the plan" in log
    assert second == first
    touch_later(path, "id,v\n1,10\n2,twenty\n")
    third, log = discover(folder)
    assert "Typed" in log
    assert third["streams"][0]["schema"]["properties"]["v"] == {"type": ["string", "null"]}


def test_a_setting_that_changes_typing_retypes_the_file(folder):
    write(folder, "x.csv", "v\n1\nNA\n")
    assert discover(folder)[0]["streams"][0]["schema"]["properties"]["v"] == {"type": ["string", "null"]}
    catalog, log = discover(folder, null_values=["NA"])
    assert "Typed" in log
    assert catalog["streams"][0]["schema"]["properties"]["v"] == {"type": ["integer", "null"]}


def test_a_sync_with_the_discovered_catalog_reads_the_file_once(folder):
    write(folder, "x.csv", "id,v\n1,10\n2,20\n")
    catalog = save(folder, discover(folder)[0])
    (folder.parent / "cache").rename(folder.parent / "gone")  # the catalog alone vouches for the types
    run = run_tap(folder, "--catalog", catalog)
    assert run.returncode == 0, run.stderr
    assert "Typed" not in run.stderr
    assert run.records("x") == [{"id": 1, "v": 10}, {"id": 2, "v": 20}]


def test_a_stale_catalog_fails_before_loading_anything_wrong(folder):
    path = write(folder, "x.csv", "id,v\n1,10\n2,20\n")
    catalog = save(folder, discover(folder)[0])
    touch_later(path, "id,v\n1,10\n2,20\n3,thirty\n")
    run = run_tap(folder, "--catalog", catalog)
    assert run.returncode != 0
    assert f"{path} line 4: column 'v': 'thirty' is not an integer" in run.last_error_line
    assert "re-run discovery" in run.last_error_line
    assert "Traceback" not in run.stderr
    assert not [m for m in run.messages if m["type"] == "RECORD"]


def test_a_changed_file_that_still_fits_the_catalog_loads(folder):
    path = write(folder, "x.csv", "id,v\n1,10\n")
    catalog = save(folder, discover(folder)[0])
    touch_later(path, "id,v\n1,10\n2,20\n")
    run = run_tap(folder, "--catalog", catalog)
    assert run.returncode == 0, run.stderr
    assert run.records("x") == [{"id": 1, "v": 10}, {"id": 2, "v": 20}]


def test_catalog_types_edited_to_text_are_honoured(folder):
    write(folder, "x.csv", "id,zip\n1,12345\n2,02134\n3,10001\n")
    write(folder, "y.csv", "id,zip\n1,12345\n")
    catalog = discover(folder)[0]
    entry = next(stream for stream in catalog["streams"] if stream["tap_stream_id"] == "y")
    entry["schema"]["properties"]["zip"] = {"type": ["string", "null"]}
    run = run_tap(folder, "--catalog", save(folder, catalog))
    assert run.returncode == 0, run.stderr
    assert run.records("y") == [{"id": 1, "zip": "12345"}]


@pytest.mark.parametrize("prefix", ["", "stg_"], ids=["no stream map", "an alias stream map"])
def test_a_deselected_stream_is_not_read(folder, prefix):
    maps = {"stream_maps": {"*": {"__alias__": f"'{prefix}' + __stream_name__"}}} if prefix else {}
    write(folder, "good.csv", "id\n1\n")
    bad = write(folder, "bad.csv", "id\n1\n")
    catalog = discover(folder, **maps)[0]
    for entry in catalog["streams"]:
        entry["metadata"] = [{"breadcrumb": [], "metadata": {"selected": entry["tap_stream_id"] == "good"}}]
    touch_later(bad, "id\n1\n2,extra\n")
    run = run_tap(folder, "--catalog", save(folder, catalog), **maps)
    assert run.returncode == 0, run.stderr
    assert run.streams == [f"{prefix}good"]


def test_keys_set_in_the_catalog_are_checked(folder):
    write(folder, "x.csv", "id,code\n1,a\n2,a\n")
    catalog = discover(folder)[0]
    catalog["streams"][0]["key_properties"] = ["code"]
    run = run_tap(folder, "--catalog", save(folder, catalog))
    assert run.returncode != 0
    assert "the key (code) is not unique: 'a' is on lines 2 and 3" in run.last_error_line


def test_skip_lines_header_and_duplicate_headers_are_part_of_the_plan_cache_key(folder):
    write(folder, "x.csv", "a,A\n1,2\n3,4\n")
    found = []
    for config in ({}, {"skip_lines": 1}, {"files": [{"path": "x.csv", "header": False}]},
                   {"files": [{"path": "x.csv", "skip_lines": 1, "header": False}]}):
        catalog, log = discover(folder, **config)
        assert "Typed" in log, config  # a plan cached for other settings is not reused
        found.append({name: schema["type"][0] for name, schema in catalog["streams"][0]["schema"]["properties"].items()})
    assert found == [{"a": "integer", "a_2": "integer"}, {"_1": "integer", "_2": "integer"},
                     {"column_1": "string", "column_2": "string"}, {"column_1": "integer", "column_2": "integer"}]
    refused = run_tap(folder, "--discover", duplicate_headers="fail")  # not the plan cached for rename
    assert refused.returncode != 0
    assert "headers 'a' and 'A' both normalize to column name 'a'" in refused.last_error_line
