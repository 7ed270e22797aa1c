"""Large files: typed from a sample at discovery, every value checked as it is sent (issue 24).

The files here are about 14 MB: the reader's first block (two 4 MB chunks, rows 1-31,000 or
so) and its second (about 4 MB more, to row 47,000) are sent before the rows of the third that
change a column's type; `sample_bytes` is 64 KB, so that the sample (the first and last 16 KB,
and 16 spans of 2 KB between) misses those rows.
"""

from __future__ import annotations

import decimal
import json
import os
import pathlib
import re
import subprocess
import sys
import typing as t

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tap_wiserock_csv import kinds, widen
from tests.conftest import batch_config, run_tap

if t.TYPE_CHECKING:
    from tests.conftest import TapRun

SAMPLE = 64 * 1024
ROWS = 55_000
PAD = "p" * 230  # rows of about 260 bytes
MIDDLE = 40_000  # in the second block, between two spans of the sample
LATE = ROWS - 700  # in the third block, about 180 KB before the end: outside the sample


def big(folder: pathlib.Path, header: str, row: t.Callable[[int], str], late: dict[int, str],
        name: str = "x.csv") -> pathlib.Path:
    """ROWS rows (file line i + 1 is row i) made by `row(i)`, those in `late` replaced, each padded."""
    path = folder / name
    path.write_text("\n".join([f"{header},pad", *(f"{late.get(i) or row(i)},{PAD}" for i in range(1, ROWS + 1))])
                    + "\n")
    assert path.stat().st_size > 12.5 * 2**20  # three blocks
    return path


def sampled(folder: pathlib.Path, *args: str, **config: t.Any) -> TapRun:
    return run_tap(folder, *args, **{"emit_activate_version_messages": True, "sample_bytes": SAMPLE, **config})


def discover(folder: pathlib.Path, **config: t.Any) -> tuple[dict[str, t.Any], str]:
    config_file = folder.parent / "discover.json"
    config_file.write_text(json.dumps({"data_dir": str(folder), "cache_dir": str(folder.parent / "cache"),
                                       "emit_activate_version_messages": True, "sample_bytes": SAMPLE, **config}))
    process = subprocess.run([sys.executable, "-m", "tap_wiserock_csv.tap", "--config", str(config_file), "--discover"],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ), check=False)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout), process.stderr


def save(folder: pathlib.Path, catalog: dict[str, t.Any]) -> str:
    path = folder.parent / "catalog.json"
    path.write_text(json.dumps(catalog))
    return str(path)


def kinds_of(properties: dict[str, t.Any]) -> dict[str, str | None]:
    return {name: kinds.kind_of_schema(prop) for name, prop in properties.items() if name != "pad"}


def schemas(run: TapRun) -> list[dict[str, str | None]]:
    """The kinds of each SCHEMA message of the stream x, in order."""
    return [kinds_of(m["schema"]["properties"]) for m in run.messages if m["type"] == "SCHEMA"]


def first_pass_kinds(folder: pathlib.Path) -> dict[str, str | None]:
    """What a first pass over every value gives: where a sampled sync must end."""
    catalog, log = discover(folder, sample_bytes=0, cache_dir="")
    assert "from its content" in log
    return kinds_of(catalog["streams"][0]["schema"]["properties"])


def rows_as_written(run: TapRun, column: str, root: pathlib.Path | None = None) -> list[tuple[int | None, str | None]]:
    """(version, value as text) of `column` in each row sent, in order: RECORD values, or the
    batch files' values (integers, decimal text, strings) with their BATCH message's version."""
    found: list[tuple[int | None, str | None]] = []
    for message in run.messages:
        if message["type"] == "RECORD":
            value = message["record"][column]
            found.append((message.get("version"), None if value is None else str(value)))
        elif message["type"] == "BATCH":
            for url in message["manifest"]:
                table = pq.read_table(pathlib.Path(url.removeprefix("file://")), columns=[column])
                assert root is None or pathlib.Path(url.removeprefix("file://")).parent == root
                found += [(message.get("version"), None if value is None else str(value))
                          for value in table.column(0).to_pylist()]
    return found


def messages_in_order(run: TapRun) -> list[str]:
    """The message types, runs of RECORD or BATCH messages shown once."""
    kinds_seen: list[str] = []
    for message in run.messages:
        if message["type"] != "STATE" and (not kinds_seen or kinds_seen[-1] != message["type"]
                                           or message["type"] not in {"RECORD", "BATCH"}):
            kinds_seen.append(message["type"])
    return kinds_seen


def test_a_large_file_is_typed_from_a_sample_that_reaches_its_end(folder):
    big(folder, "id,code,late", lambda i: f"{i},{i},{i}", {ROWS: f"{ROWS},A-17,{ROWS}", LATE: f"{LATE},{LATE},x"})
    catalog, log = discover(folder)
    assert "Typed" in log and "from a sample of 64 KB" in log
    assert kinds_of(catalog["streams"][0]["schema"]["properties"]) == {"id": "integer", "code": "string",
                                                                       "late": "integer"}


def test_spans_that_start_inside_quoted_fields_do_not_mislead_the_sample(folder):
    """Lines inside a quoted note look like rows with text where `n` is: a span starting there
    would make `n` text; such spans are left out."""
    note = '"{i},word,x\n{i},more,y\nend"'
    big(folder, "id,n,note", lambda i: f"{i},{i},{note.format(i=i)}", {})
    catalog, log = discover(folder)
    assert "from a sample" in log
    assert kinds_of(catalog["streams"][0]["schema"]["properties"]) == first_pass_kinds(folder)


@pytest.mark.parametrize("mode", ["RECORD", "BATCH"])
def test_later_values_widen_their_columns_exactly_and_end_as_a_first_pass_types_them(folder, mode, tmp_path):
    """n: integers, then a number, then text; day: dates, then text; sparse: empty, then integers.
    Each change reaches the rows already sent exactly (a SCHEMA message before the block)."""
    def row(i: int) -> str:
        return f"{i},{i * 7},2024-{i % 12 + 1:02d}-{i % 28 + 1:02d},,{i % 1000}.{i % 100:02d}"
    late = {MIDDLE: f"{MIDDLE},2.50,2024-01-01,,1.00", LATE: f"{LATE},n/a,unknown,5,-0.5",
            LATE + 1: f"{LATE + 1},7,1999-12-31,6,0.25"}
    path = big(folder, "id,n,day,sparse,amount", row, late)
    root = tmp_path / "batches"
    run = sampled(folder, **({"batch_config": batch_config(root)} if mode == "BATCH" else {}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "follow exactly" in run.stderr and "again" not in run.stderr
    changes = schemas(run)
    assert [(s["n"], s["day"], s["sparse"], s["amount"]) for s in changes] == [
        ("integer", "date", "string", "number"), ("number", "date", "string", "number"),
        ("string", "string", "integer", "number")]
    assert changes[-1] == first_pass_kinds(folder)
    order = messages_in_order(run)
    sent = "RECORD" if mode == "RECORD" else "BATCH"
    assert order == ["SCHEMA", sent, "SCHEMA", sent, "SCHEMA", sent, "ACTIVATE_VERSION"]
    written = [line.split(",") for line in path.read_text().splitlines()[1:]]
    for position, column in enumerate(["n", "day", "sparse"], start=1):
        values = [value for _, value in rows_as_written(run, column, root if mode == "BATCH" else None)]
        assert values == [line[position] or None for line in written], column
    if mode == "BATCH":  # each file holds the types of the SCHEMA before its BATCH message
        types = [pq.read_schema(pathlib.Path(url.removeprefix("file://"))).field("n").type
                 for m in run.messages if m["type"] == "BATCH" for url in m["manifest"]]
        assert types == sorted(types, key=[pa.int64(), pa.string()].index)
        assert set(types) == {pa.int64(), pa.string()}


START_OVER_CASES = {
    "yes/no becomes text": ("id,flag", lambda i: f"{i},{'Y' if i % 2 else 'no'}", "maybe", "flag"),
    "a date-time becomes text": ("id,at", lambda i: f"{i},2024-01-01 10:{i % 60:02d}", "n/a", "at"),
    "a number written 5e-1 becomes text": ("id,amount", lambda i: f"{i},{i}e-1", "n/a", "amount"),
    "an integer written -0 becomes text": ("id,code", lambda i: f"{i},{'-0' if i == 3 else i}", "x", "code"),
    "a 0/1 flag becomes an integer": ("id,is_active", lambda i: f"{i},{i % 2}", "2", "is_active"),
}


@pytest.mark.parametrize("mode", ["RECORD", "BATCH"])
@pytest.mark.parametrize("case", list(START_OVER_CASES))
def test_a_change_the_rows_sent_cannot_follow_sends_the_stream_again_as_its_next_version(folder, tmp_path, case, mode):
    header, row, value, column = START_OVER_CASES[case]
    path = big(folder, header, row, {LATE: f"{LATE},{value}"})
    root = tmp_path / "batches"
    run = sampled(folder, **({"batch_config": batch_config(root)} if mode == "BATCH" else {}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"({value!r} on line {LATE + 1}): the rows already sent cannot take that type exactly" in run.stderr
    assert schemas(run)[-1] == first_pass_kinds(folder)
    activations = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    sent = rows_as_written(run, column, root if mode == "BATCH" else None)
    first, second = sent[0][0], activations[0]["version"]
    assert len(activations) == 1 and second == first + 1
    last_sent = max(index for index, m in enumerate(run.messages) if m["type"] in {"RECORD", "BATCH"})
    assert run.messages.index(activations[0]) > last_sent
    assert {version for version, _ in sent} == {first, second}
    assert 0 < sum(version == first for version, _ in sent) < ROWS  # a part was sent before
    again = [text for version, text in sent if version == second]
    assert again == [line.split(",")[1] for line in path.read_text().splitlines()[1:]]  # every row, as written
    if mode == "BATCH":  # every file left is named in a BATCH message: the one open at the start over is gone
        named = {pathlib.Path(url.removeprefix("file://")).name
                 for m in run.messages if m["type"] == "BATCH" for url in m["manifest"]}
        assert {file.name for file in root.iterdir()} == named


def test_a_repeated_key_beyond_the_sample_fails_before_the_stream_completes(folder):
    big(folder, "id,v", lambda i: f"{i},{i}", {LATE: f"3,{LATE}"})
    run = sampled(folder)
    assert run.returncode == 1
    assert f"x.csv: the key (id) is not unique: '3' is on lines 4 and {LATE + 1}; " in run.last_error_line
    assert "Traceback" not in run.stderr
    assert [m for m in run.messages if m["type"] == "RECORD"]  # sent before the last row was read
    assert not [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]  # the loader commits nothing


def test_a_bad_row_beyond_the_sample_fails_naming_its_line_before_the_stream_completes(folder):
    big(folder, "id,v", lambda i: f"{i},{i}", {LATE: f"{LATE},1,extra"})
    run = sampled(folder)
    assert run.returncode == 1
    assert run.last_error_line.endswith(f"x.csv line {LATE + 1}: expected 3 fields, found 4")
    assert [m for m in run.messages if m["type"] == "RECORD"]
    assert not [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]


def test_without_activate_version_messages_a_large_file_is_typed_from_every_value_first(folder):
    """A stream without versions could not be sent again: the tap types such files first, as before."""
    big(folder, "id,flag", lambda i: f"{i},{'Y' if i % 2 else 'N'}", {LATE: f"{LATE},maybe"})
    run = run_tap(folder, sample_bytes=SAMPLE)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "from its content" in run.stderr and "from a sample" not in run.stderr
    assert schemas(run) == [{"id": "integer", "flag": "string"}]


def test_the_next_discovery_of_the_unchanged_file_takes_the_types_its_sync_ended_with(folder):
    big(folder, "id,n", lambda i: f"{i},{i}", {LATE: f"{LATE},n/a"})
    catalog, _ = discover(folder)
    assert kinds_of(catalog["streams"][0]["schema"]["properties"])["n"] == "integer"
    run = sampled(folder, "--catalog", save(folder, catalog))
    assert run.returncode == 0 and "follow exactly" in run.stderr, run.stderr[-3000:]
    catalog, log = discover(folder)
    assert "Reusing the plan" in log and "Typed" not in log
    assert kinds_of(catalog["streams"][0]["schema"]["properties"])["n"] == "string"
    run = sampled(folder, "--catalog", save(folder, catalog))
    assert run.returncode == 0, run.stderr[-3000:]
    assert schemas(run) == [{"id": "integer", "n": "string"}] and "follow exactly" not in run.stderr


def test_a_deselected_column_that_changes_is_not_sent_and_starts_nothing_over(folder):
    big(folder, "id,flag,n", lambda i: f"{i},{'Y' if i % 2 else 'N'},{i}", {LATE: f"{LATE},maybe,{LATE}"})
    catalog, _ = discover(folder)
    entry = catalog["streams"][0]
    entry["metadata"] = [{"breadcrumb": ["properties", "flag"], "metadata": {"selected": False}}]
    run = sampled(folder, "--catalog", save(folder, catalog))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "again" not in run.stderr and "follow exactly" not in run.stderr
    assert len(schemas(run)) == 1
    records = run.records("x")
    assert len(records) == ROWS and "flag" not in records[0]


INTEGERS = ["0", "-0", "7", "-7", "007", "+7", "1.0", "1e3", " 7", "7 ", "9223372036854775807",
            "-9223372036854775808", "9223372036854775808", "12345678901234567890", "", "x"]
DATE_TIMES = ["2024-03-01", "2024-03-01T10", "2024-03-01T10:00", "2024-03-01 10:00:00", "0000-03-01T10:00",
              "0001-01-01T00:00+01:00", "9999-12-31T23:59:59-05", "2024-03-01T10:00:00.123456",
              "2024-03-01T10:00:00.1234567", "2024-03-01T10:00Z", "2024-03-01T10:00+01", "2024-03-01T10:00+0130",
              "2024-03-01T10:00:00+01:30", "2024-03-01T10:00:00z", "2024-13-01T10:00", "2024-02-30T10:00",
              "2024-03-01T24:00", "2024-03-01T10:00:60", "2024-03-01T10:00:00 +01:00", "2024-03-01t10:00",
              "20240301T1000", " 2024-03-01T10:00", "2024-03-01T10:00.5", "2024-03-01T10:00:00.",
              "2024-03-01T10:00:00+1", "2024-3-01T10:00:00"]


@pytest.mark.parametrize("value", INTEGERS)
def test_the_integer_check_by_a_cast_takes_what_the_pattern_takes_without_minus_zero(value):
    values = pa.array([value])
    by_pattern = bool(re.fullmatch(kinds._INTEGER.strip("^$"), value)) and -2**63 <= int(value or 0) < 2**63
    assert (kinds.written_integers(values) is not None) == (by_pattern and value != "-0")


@pytest.mark.parametrize("value", DATE_TIMES)
def test_the_date_time_check_by_the_parser_takes_what_the_pattern_takes(value):
    values = pa.array([value])
    by_pattern = bool(re.fullmatch(kinds._DATE_TIME.strip("^$"), value)) and kinds._parsed_directly(values) is not None
    assert (kinds.parsed_date_times(values) is not None) == by_pattern


def test_a_number_column_stays_exact_when_its_values_are_written_as_numeric_prints_them(folder):
    """1.50 and -0.5 read back as written through text: a late text value widens without starting over."""
    big(folder, "id,amount", lambda i: f"{i},{'-0.5' if i == 5 else '1.50' if i == 6 else decimal.Decimal(i) / 4}",
        {LATE: f"{LATE},n/a"})
    run = sampled(folder)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "follow exactly" in run.stderr and "again" not in run.stderr
    assert [value for _, value in rows_as_written(run, "amount")][4:7] == ["-0.5", "1.50", "1.75"]


@pytest.mark.parametrize(("value", "printed"), [
    ("1.50", True), ("-0.5", True), ("0", True), ("0.000", True), ("12", True), ("-12.0", True), ("-0.001", True),
    ("-0", False), ("-0.00", False), ("1e3", False), (".5", False), ("-.5", False), ("007", False), ("+1", False),
    ("1.", False), ("7" * 4001, False)])
def test_numbers_count_as_printed_only_in_the_form_numeric_prints_them_back(value, printed):
    """The values whose column may become text without a start over: numeric::text gives them back."""
    assert widen._printed_numbers(pa.array([value, "1.5"])) is printed
