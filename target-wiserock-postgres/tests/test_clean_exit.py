"""Contract 11: on every failure the COPY running and the connection are closed before the error
line, which is the last thing on stderr (no warning about a connection or a COPY left open),
and nothing changes. `error_line` checks that it is the last line; the processes run with
Python's hidden warnings shown (`-W default`). Other modules' failures are checked the same way."""

from __future__ import annotations

import typing as t

import pytest

from tests.conftest import activate, error_line, record, run_cli, schema, snapshot

if t.TYPE_CHECKING:
    import pathlib

PREVIOUS = snapshot("t", [{"id": 1, "v": "old"}], id="integer", v="string")
# A stream whose COPY is running when the failure comes.
STREAMING = [schema("t", id="integer", v="string"), *(record("t", id=n, v="new") for n in range(2, 500))]


def bad_file(house) -> dict:
    path = house.folder / "garbage.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    return {"type": "BATCH", "stream": "t", "encoding": {"format": "parquet", "compression": "none"},
            "manifest": [path.as_uri()]}


def outside_file(house) -> pathlib.Path:
    path = house.folder.parent / f"{house.schema}-outside.txt"  # beside the test's batch root
    path.write_text("someone's file\n")
    return path


CASES = {
    "bad value": (lambda house: [*STREAMING, record("t", id="x"), activate("t")],
                  "table t, column id: invalid input syntax for type bigint"),
    "duplicate key": (lambda house: [*STREAMING, record("t", id=2), activate("t")], "table t: duplicate key (id)=(2)"),
    "missing key": (lambda house: [*STREAMING, record("t", v="no id"), activate("t")],
                    "table t: a record has no value for column id"),
    "unknown stream": (lambda house: [*STREAMING, record("nobody", id=1)],
                       "stream 'nobody': RECORD before its SCHEMA (unknown stream)"),
    "refused batch file": (lambda house: [*STREAMING, {**bad_file(house), "manifest": [outside_file(house).as_uri()]}],
                           "is outside the folders of the setting batch_roots"),
    "unreadable batch file": (lambda house: [*STREAMING, bad_file(house)], "cannot be read as parquet"),
    "refused name": (lambda house: [*STREAMING, schema("t", id="integer", **{"v\x00": "string"})],
                     "stream 't': property 'v\\x00' contains a NUL character"),
    "line that is not JSON": (lambda house: [*STREAMING, '{"type": "RECORD", "stream": "t", "rec'],
                              "input line 500 is not valid JSON"),
    "incomplete stream": (lambda house: STREAMING, "stream 't' did not complete"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_error_line_is_the_last_line(warehouse, case):
    messages, expected = CASES[case]
    run_cli(warehouse, PREVIOUS)
    result = run_cli(warehouse, messages(warehouse))
    assert expected in error_line(result)
    assert warehouse.rows("t") == [(1, "old")]
