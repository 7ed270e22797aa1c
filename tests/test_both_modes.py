"""One set of rules: the CSV tap's RECORD messages and its parquet BATCH files load the same tables.

Every case goes through `meltano run tap-wiserock-csv target-postgres` twice, into two schemas:
in the environment standard-targets (RECORD messages) and in dev (BATCH files); the tables must
match in columns, types and every value. Failing cases must fail the same way and change nothing.
"""

from __future__ import annotations

import json
import shutil

import pytest

from elt.report import RELATIONS_TABLE
from elt.settings import PROJECT_DIR
from target_wiserock_postgres.snapshots import SNAPSHOTS_TABLE
from tests.conftest import Warehouse, meltano, pipeline_env

BIG_NOTE = "\n".join(f"log line {i}, with, commas and \"quotes\"" for i in range(5000))  # > 128 KiB

# Each file is a typing or bad-input case from the tap's rules (and issue 10's real-world files).
CASES = {
    "kinds.csv": "id,flag,is_gift,count,price,day,at,code,note\n"
                 "1,yes,1,10,1.50,2024-03-01,2024-03-01T10:00:00+02:00,00123,plain\n"
                 "2,N,0,-7,1e3,1999-12-31,2024-03-01 23:30:00Z,045,\"with, comma\"\n"
                 "3,t,,0,.5,,2024-03-01T10:00:00.5-0130,,\"\"\n"
                 "4,,1,,-2.25,2024-02-29,2024-03-02 11:15,x1,NULL\n",
    "exact_numbers.csv": "id,big,huge,edge,tiny\n"
                         "1,89014103211118510720,1e400,-9223372036854775808,1e-400\n"
                         "2,89014103211118510721,-1e400,9223372036854775807,2.5\n"
                         f"3,{'7' * 5000},0.1,0,0.000\n",
    "instants.csv": "id,valid_to,precise,mixed\n"
                    "1,9999-12-31 23:59:59-05,2024-01-01T00:00:00.123456Z,2024-01-01T00:00:00\n"
                    "2,0001-01-01T00:00:00+01:00,2024-01-01T00:00:00.000001Z,2024-01-01T03:00:00+02:00\n",
    "nanoseconds.csv": "id,at\n1,2024-01-01T00:00:00.123456789Z\n2,2024-01-01T00:00:01Z\n",
    "markers_and_text.csv": "id,amount,label\n1,NA,\"a\x00b\"\n2,12.5,N/A\n3,-,\"\"\n4,NULL,null\n"
                            f"5,7,\"{BIG_NOTE}\"\n",
    "Größe Grüße.csv": "ID,Größe,Grüße,userIDs,URLs,numCPUs\n1,10,20,3,4,5\n",
    "ragged_and_blank.csv": "id,a,b\n1,x,y\n2,only-two\n\n,,\n3,p,q,extra\n4,\"multi\nline\",z\n",
    # Issue 17: vendor exports as received: repeated headers, title lines, no header (with a ragged row).
    "repeated_headers.csv": "ID,Name,id,0,0,id_2\n1,a,10,x,5,z\n2,b,20,y,6,\n",
    "titled_report.csv": "Sales report \"Q3,generated 2026-11-30\r\n\"multi\r\nline\" title\r\n"
                         "id,amount,at\r\n1,5.5,2024-03-01T10:00:00+02:00\r\n2,-1e3,\r\n",
    "headerless_dump.csv": "6.320000000000000097e-03,18,x\n2.7e-02,0,\n1,2\n,7,\"\"\n",
}
CASE_SETTINGS = {"TAP_WISEROCK_CSV_ON_BAD_ROW": "skip",
                 "TAP_WISEROCK_CSV_FILES": json.dumps([{"path": "markers_and_text.csv",
                                                        "null_values": ["NULL", "NA", "N/A", "-"]},
                                                       {"path": "repeated_headers.csv", "keys": ["id_3"]},
                                                       {"path": "titled_report.csv", "skip_lines": 3},
                                                       {"path": "headerless_dump.csv", "header": False}])}


@pytest.fixture
def cases(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    for name, text in CASES.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def load(warehouse: Warehouse, folder, environment: str, **settings: str):
    env = pipeline_env(warehouse, None, TAP_WISEROCK_CSV_DATA_DIR=str(folder), **settings)
    return meltano("--environment", environment, "run", "tap-wiserock-csv", "target-postgres", env=env)


def tables(warehouse: Warehouse) -> dict[str, tuple]:
    """Every staging table: its columns and types, and all its rows as text, in order; and the
    relations the loader recorded (without the time it recorded them)."""
    names = [row[0] for row in warehouse.query(
        "select table_name from information_schema.tables where table_schema = %s and table_name <> all(%s) order by 1",
        warehouse.schema, [RELATIONS_TABLE, SNAPSHOTS_TABLE])]
    found = {name: (warehouse.column_types(name),
                    warehouse.query(f'select t::text from "{name}" t order by t::text')) for name in names}
    return {**found, RELATIONS_TABLE: warehouse.query(
        f"select child_table, child_column, parent_table, parent_column from {RELATIONS_TABLE} order by 1, 2")}


@pytest.mark.parametrize("source", ["sample", "cases"])
def test_record_and_batch_modes_load_the_same_tables(warehouse, second_warehouse, cases, tmp_path, source):
    if source == "sample":
        folder = tmp_path / "sample"
        shutil.copytree(PROJECT_DIR / "data", folder)
        settings = {}  # meltano.yml's own files overrides for the sample
    else:
        folder, settings = cases, CASE_SETTINGS
    records = load(warehouse, folder, "standard-targets", **settings)
    assert records.returncode == 0, records.stderr[-3000:]
    batches = load(second_warehouse, folder, "dev", **settings)
    assert batches.returncode == 0, batches.stderr[-3000:]
    assert '"metric":"batch_count"' in batches.stderr and '"metric":"batch_count"' not in records.stderr
    loaded = tables(warehouse)
    from_batches = tables(second_warehouse)
    for name in loaded:  # table by table, so that a difference names its table
        assert (name, loaded[name]) == (name, from_batches.get(name))
    assert loaded.keys() == from_batches.keys()
    relations = loaded.pop(RELATIONS_TABLE)
    assert relations == ([("stg_wiserock_csv_order_items", "order_id", "stg_wiserock_csv_orders", "order_id"),
                          ("stg_wiserock_csv_orders", "customer_id", "stg_wiserock_csv_customers", "id")]
                         if source == "sample" else [])  # meltano.yml declares the sample's
    assert len(loaded) == (3 if source == "sample" else len(CASES))
    assert all(rows for _, rows in loaded.values())
    if source == "cases":  # issue 17's files loaded as they came: renamed, past their title, numbered columns
        assert loaded["stg_wiserock_csv_repeated_headers"][0].keys() == {"id", "name", "id_3", "_0", "_0_2", "id_2"}
        assert loaded["stg_wiserock_csv_titled_report"][0] == {"id": "bigint", "amount": "numeric",
                                                               "at": "timestamp with time zone"}
        assert loaded["stg_wiserock_csv_headerless_dump"] == (
            {"column_1": "numeric", "column_2": "bigint", "column_3": "text"},
            [("(,7,\"\")",), ("(0.006320000000000000097,18,x)",), ("(0.027,0,)",)])


def test_a_failing_file_fails_both_modes_alike_and_changes_nothing(warehouse, second_warehouse, cases):
    outcomes = []
    for environment, target in (("standard-targets", warehouse), ("dev", second_warehouse)):
        assert load(target, cases, environment, **CASE_SETTINGS).returncode == 0
        before = tables(target)
        (cases / "ragged_and_blank.csv").write_text("id,a\n1\n2\n")  # every row bad: the file fails
        failed = load(target, cases, environment, **CASE_SETTINGS)
        (cases / "ragged_and_blank.csv").write_text(CASES["ragged_and_blank.csv"])
        assert failed.returncode != 0
        assert tables(target) == before
        # Meltano repeats the tap's line in its own; one message either way.
        (message,) = {line.split("tap-wiserock-csv: error:", 1)[1].strip()
                      for line in failed.stderr.splitlines() if "tap-wiserock-csv: error:" in line}
        outcomes.append(message)
    assert outcomes[0] == outcomes[1]
    assert "ragged_and_blank.csv" in outcomes[0]
