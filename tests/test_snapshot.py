"""What analysts see of a load: the old snapshot until the commit, views that keep working, and
tables whose columns follow the source (through `meltano run`, into PostgreSQL)."""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest

from elt.settings import PROJECT_DIR
from tests.conftest import MELTANO, meltano, pipeline_env


def test_readers_see_the_previous_snapshot_until_the_commit_and_views_keep_working(warehouse, sandbox):
    box = sandbox.sandbox
    env = pipeline_env(warehouse, sandbox, TAP_WISEROCK_API_PAGE_SIZE="50")
    assert meltano("run", "tap-wiserock-api", "target-postgres", env=env).returncode == 0
    warehouse.query("create view analyst_active_notes as select id, title from stg_wiserock_note where activeflag")
    before = warehouse.fingerprint("stg_wiserock_note")
    box.delete_rows("note", [row["id"] for row in box.rows("note")[::5]])
    box.faults.latency = 0.05  # a slow source: the load takes seconds while the reader looks
    process = subprocess.Popen([str(MELTANO), "run", "tap-wiserock-api", "target-postgres"], cwd=PROJECT_DIR, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen_during_load = []
    with psycopg.connect(**warehouse.database.params, autocommit=True) as reader:
        # A reader that waits on a lock would hit this timeout and fail the test.
        reader.execute("set statement_timeout = '2s'")
        reader.execute(f'set search_path to "{warehouse.schema}"')
        while process.poll() is None:
            seen_during_load.append(reader.execute(
                "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) "
                "from stg_wiserock_note t").fetchone())
            time.sleep(0.1)
    assert process.wait() == 0, process.stderr.read()[-3000:]
    assert len(seen_during_load) > 10  # the reader really looked during the load
    assert set(seen_during_load) <= {before, warehouse.fingerprint("stg_wiserock_note")}  # never a mix
    assert seen_during_load[0] == before
    assert warehouse.ids("stg_wiserock_note") == [row["id"] for row in box.rows("note")]
    active = sorted(row["id"] for row in box.rows("note") if str(row["activeflag"]).lower() in {"true", "1", "y", "yes", "t"})
    assert [row[0] for row in warehouse.query("select id from analyst_active_notes order by id")] == active


@pytest.fixture
def csv_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def load_csv(warehouse, folder):
    env = pipeline_env(warehouse, None, TAP_WISEROCK_CSV_DATA_DIR=str(folder), TAP_WISEROCK_CSV_FILES="[]")
    return meltano("run", "tap-wiserock-csv", "target-postgres", env=env)


def test_columns_follow_the_source_and_a_blocking_view_is_named(warehouse, csv_folder):
    table = "stg_wiserock_csv_items"
    (csv_folder / "items.csv").write_text("id,amount,code\n1,10,a\n2,20,b\n")
    assert load_csv(warehouse, csv_folder).returncode == 0
    assert warehouse.column_types(table) == {"id": "bigint", "amount": "bigint", "code": "text"}

    # amount turns into text, a column appears, a row goes: the snapshot and its types follow.
    (csv_folder / "items.csv").write_text("id,amount,code,weight\n1,ten,a,1.5\n3,30,c,2\n")
    warehouse.query(f"create view amounts as select sum(amount) as total from {table}")
    before = warehouse.fingerprint(table)
    blocked = load_csv(warehouse, csv_folder)
    assert blocked.returncode != 0
    (line,) = [line for line in blocked.stderr.splitlines() if "target-wiserock-postgres: error:" in line]
    assert "amounts" in line and "amount" in line  # names the view and the column
    assert warehouse.fingerprint(table) == before
    assert warehouse.column_types(table)["amount"] == "bigint"

    warehouse.query("drop view amounts")
    assert load_csv(warehouse, csv_folder).returncode == 0
    assert warehouse.column_types(table) == {"id": "bigint", "amount": "text", "code": "text", "weight": "numeric"}
    assert warehouse.query(f"select id, amount, code, weight from {table} order by id") == [
        (1, "ten", "a", pytest.approx(1.5)), (3, "30", "c", 2)]

    # A column gone from the source stays, empty: analysts' queries that name it keep running.
    (csv_folder / "items.csv").write_text("id,amount,weight\n1,ten,1.5\n")
    assert load_csv(warehouse, csv_folder).returncode == 0
    assert warehouse.query(f"select id, amount, code from {table} order by id") == [(1, "ten", None)]
