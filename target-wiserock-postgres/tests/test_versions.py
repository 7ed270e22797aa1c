"""A stream sent again as its next version (a full-table tap starting over) replaces what came
before in the run; a SCHEMA change reaches the rows loaded so far only if they stay."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import error_line, load, process_env, record, run_cli, schema


def versioned(stream: str, version: int, **values: object) -> dict:
    return {**record(stream, **values), "version": version}


def activate(stream: str, version: int) -> dict:
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def batch(warehouse, stream: str, version: int, name: str, table: pa.Table) -> dict:
    path = warehouse.folder / name
    pq.write_table(table, path)
    return {"type": "BATCH", "stream": stream, "encoding": {"format": "parquet", "compression": "none"},
            "manifest": [path.resolve().as_uri()], "version": version}


@pytest.mark.parametrize("existing", [False, True], ids=["new table", "existing table"])
@pytest.mark.parametrize("mode", ["RECORD", "BATCH"])
def test_a_stream_sent_again_as_its_next_version_keeps_only_those_rows(warehouse, existing, mode):
    if existing:
        load(warehouse, [schema("t", id="integer", flag="boolean"), versioned("t", 1, id=9, flag=False),
                         activate("t", 1)])
    first, second = [{"id": n, "flag": n % 2 == 1} for n in (1, 2, 3)], [{"id": 1, "flag": "Y"}, {"id": 2, "flag": "N"}]
    if mode == "RECORD":
        sent = [versioned("t", 10, **row) for row in first]
        again = [versioned("t", 11, **row) for row in second]
    else:
        sent = [batch(warehouse, "t", 10, "v10.parquet", pa.Table.from_pylist(first))]
        again = [batch(warehouse, "t", 11, "v11.parquet", pa.Table.from_pylist(second))]
    load(warehouse, [schema("t", id="integer", flag="boolean"), *sent, schema("t", id="integer", flag="string"),
                     *again, activate("t", 11)])
    assert warehouse.rows("t") == [(1, "Y"), (2, "N")]
    assert warehouse.column_types("t")["flag"] == "text"


def test_rows_dropped_for_a_new_version_are_never_converted_to_a_later_schema(warehouse):
    """Version 1's text could not become bigint; version 2 arrives first, so nothing is converted."""
    load(warehouse, [schema("t", id="integer", code="string"), versioned("t", 1, id=1, code="A-17"),
                     schema("t", id="integer", code="integer"), versioned("t", 2, id=1, code=17),
                     activate("t", 2)])
    assert warehouse.rows("t") == [(1, 17)]
    assert warehouse.column_types("t")["code"] == "bigint"


@pytest.mark.parametrize("existing", [False, True], ids=["new table", "existing table"])
def test_a_schema_change_still_reaches_the_rows_loaded_so_far(warehouse, existing):
    """integer -> number -> text and date -> text, as the CSV tap widens: each value as sent, in
    a new table (loaded directly) and in an existing one (loaded into a temp table, then merged)."""
    if existing:
        load(warehouse, [schema("t", id="integer", code="integer", day="date"), versioned("t", 1, id=9, code=1),
                         activate("t", 1)])
    load(warehouse, [schema("t", id="integer", code="integer", day="date"),
                     versioned("t", 2, id=1, code=17, day="0999-03-01"),
                     schema("t", id="integer", code="number", day="date"),
                     '{"type": "RECORD", "stream": "t", "record": {"id": 2, "code": 2.50}, "version": 2}',
                     schema("t", id="integer", code="string", day="string"),
                     versioned("t", 2, id=3, code="A-18", day="unknown"),
                     schema("t", id="integer", code="string", day="string", extra="boolean"), activate("t", 2)])
    assert warehouse.rows("t") == [(1, "17", "0999-03-01", None), (2, "2.50", None, None), (3, "A-18", "unknown", None)]
    assert warehouse.column_types("t") == {"id": "bigint", "code": "text", "day": "text", "extra": "boolean"}


def test_activate_version_of_another_version_than_the_rows_fails_and_changes_nothing(warehouse):
    load(warehouse, [schema("t", id="integer"), versioned("t", 1, id=1), activate("t", 1)])
    result = run_cli(warehouse, [schema("t", id="integer"), versioned("t", 3, id=2), activate("t", 2)])
    assert error_line(result).endswith("stream 't': ACTIVATE_VERSION names version 2, but the stream's rows are "
                                       "version 3; nothing was changed")
    assert warehouse.rows("t") == [(1,)]


def test_a_date_column_turned_into_text_keeps_its_dates_as_written_whatever_the_datestyle(warehouse, monkeypatch):
    """A tap writes dates only as YYYY-MM-DD; the loader's session prints them so (DateStyle ISO),
    also where the server's or the login's DateStyle is another."""
    monkeypatch.setenv("PGOPTIONS", "-c datestyle=SQL,DMY")
    messages = [schema("t", id="integer", day="date"), versioned("t", 1, id=1, day="0999-03-01"),
                versioned("t", 1, id=2, day="2024-12-31"), schema("t", id="integer", day="string"),
                versioned("t", 1, id=3, day="unknown"), activate("t", 1)]
    assert os.environ["PGOPTIONS"] == process_env(warehouse)["PGOPTIONS"]
    result = run_cli(warehouse, messages)
    assert result.returncode == 0, result.stderr[-2000:]
    assert warehouse.rows("t") == [(1, "0999-03-01"), (2, "2024-12-31"), (3, "unknown")]
