"""The loader's inputs as the project feeds them: long CSV names shortened as the CSV tap shortens
them, and batch files read and deleted only in the project's batch folder (meltano.yml's
`batch_roots`, the taps' storage root)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from elt.settings import PROJECT_DIR
from tap_wiserock_csv.naming import snake_name
from target_wiserock_postgres.names import MAX_IDENTIFIER_BYTES, short_name
from tests.conftest import MELTANO, batch_files, meltano, pipeline_env

STAGING_PREFIX = "stg_wiserock_csv_"  # meltano.yml's stream map for the CSV tap
# Names as the tap makes them (lowercase ASCII words joined by single underscores), over 63 bytes.
LONG_NAMES = [
    "a" * 64, "b" * 200, "x_" * 40 + "x", "_".join(["part"] * 20),
    "c" * 53 + "_" + "d" * 20,  # the cut falls on an underscore, which both drop
    "_1st_" + "g" * 70, "order_items_exported_by_the_finance_team_on_the_first_monday_of_2024",
    STAGING_PREFIX + "a_very_long_export_file_name_from_the_finance_team_2024_q4",
    STAGING_PREFIX + "_".join(str(n) for n in range(30)),
]


@pytest.mark.parametrize("name", LONG_NAMES)
def test_the_loader_shortens_long_names_as_the_csv_tap_does(name):
    """Each package has its own copy of the rule (they install into separate environments)."""
    assert len(name.encode()) > MAX_IDENTIFIER_BYTES
    assert short_name(name) == snake_name(name, 1)
    assert len(short_name(name).encode()) <= MAX_IDENTIFIER_BYTES


def test_a_long_csv_file_name_and_header_load_through_meltano(warehouse, tmp_path):
    """A 60-character file name plus the stream map's prefix is over 63 bytes: the loader shortens
    the table's name as the tap would; the tap has already shortened the long header."""
    stem = "quarterly_revenue_by_region_and_product_line_before_adjustment"
    header = "revenue_in_euros_before_taxes_discounts_returns_and_currency_adjustments"
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / f"{stem}.csv").write_text(f"id,{header}\n1,10.5\n2,20\n")
    files_before = batch_files()
    env = pipeline_env(warehouse, None, TAP_WISEROCK_CSV_DATA_DIR=str(folder), TAP_WISEROCK_CSV_FILES="[]")
    result = meltano("run", "tap-wiserock-csv", "target-postgres", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"metric":"batch_count"' in result.stderr  # BATCH files, from the project's batch folder ...
    assert batch_files() == files_before  # ... deleted once loaded
    table = snake_name(STAGING_PREFIX + stem, 1)
    assert table != STAGING_PREFIX + stem
    assert f"its table is {table}" in result.stderr
    assert warehouse.column_types(table) == {"id": "bigint", snake_name(header, 2): "numeric"}
    assert warehouse.query(f"select id, {snake_name(header, 2)}::text from {table} order by id") == [(1, "10.5"), (2, "20")]


def configured(plugin: str, environment: str) -> dict:
    result = meltano("--environment", environment, "config", "print", plugin, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_loader_owns_the_folder_the_taps_write_batch_files_to(environment):
    roots = [pathlib.Path(root).resolve() for root in configured("target-postgres", environment)["batch_roots"]]
    assert roots == [(PROJECT_DIR / ".meltano" / "run" / "batches").resolve()]
    for tap in ("tap-wiserock-csv", "tap-wiserock-api"):
        storage = configured(tap, environment)["batch_config"]["storage"]["root"]
        assert pathlib.Path(storage.removeprefix("file://")).resolve() in roots, (tap, storage)


def test_a_batch_message_naming_a_file_elsewhere_fails_and_leaves_it(warehouse, tmp_path):
    """The issue's case, as a user tried it: a hand-written stream into `meltano invoke target-postgres`."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a batch file\n")
    messages = [{"type": "SCHEMA", "stream": "t", "schema": {"properties": {"id": {"type": "integer"}}},
                 "key_properties": ["id"]},
                {"type": "BATCH", "stream": "t", "encoding": {"format": "jsonl", "compression": "none"},
                 "manifest": [notes.as_uri()]}]
    result = subprocess.run([str(MELTANO), "invoke", "target-postgres"], cwd=PROJECT_DIR,
                            env=pipeline_env(warehouse, None), input="".join(json.dumps(m) + "\n" for m in messages),
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert f"target-wiserock-postgres: error: stream 't': batch file {notes} is outside the folders of the setting " \
           f"batch_roots ({(PROJECT_DIR / '.meltano' / 'run' / 'batches').resolve()})" in last
    assert notes.read_text() == "not a batch file\n"
