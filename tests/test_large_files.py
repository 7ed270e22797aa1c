"""Large CSV files through `meltano run`: typed from a sample, sent at once, loaded exactly (issue 24).

Each file is about 14 MB, three of the CSV tap's read blocks, and the sample 64 KB
(`TAP_WISEROCK_CSV_SAMPLE_BYTES`), so that the loader has rows before the tap reads the rows
that change a column's type:
- widening.csv: `n` holds integers, then a number (second block), then text (third block); `day`
  holds dates, then text; `since` holds dates throughout. Each change reaches the rows already
  loaded exactly (a new SCHEMA message).
- safe_path.csv: `flag` holds yes/no words, then `maybe`; the rows already sent held booleans,
  which text cannot give back as written, so the tap sends the stream again as its next version
  after a first pass, and the loader drops the rows of the first one.
"""

from __future__ import annotations

import typing as t

import pytest

from tests.conftest import Warehouse, meltano, pipeline_env

if t.TYPE_CHECKING:
    import pathlib

ROWS = 55_000
PAD = "p" * 230  # rows of about 260 bytes
MIDDLE, LATE = 40_000, ROWS - 700  # the second block; the third, outside the sample
SAMPLE_BYTES = str(64 * 1024)
BATCH_FILE_BYTES = str(2**20)  # batch files of 1 MB: the loader has some of the first version's rows


def widening_row(i: int) -> list[str]:
    n = "2.50" if i == MIDDLE else "n/a" if i == LATE else str(i * 7)
    day = "unknown" if i == LATE else f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}"
    return [str(i), n, day, f"{1900 + i % 120}-01-{i % 28 + 1:02d}"]


def safe_path_row(i: int) -> list[str]:
    return [str(i), "maybe" if i == LATE else "Y" if i % 2 else "no", f"2024-01-01 10:{i % 60:02d}:00"]


def write(folder: pathlib.Path, name: str, header: str, row: t.Callable[[int], list[str]]) -> list[list[str]]:
    rows = [row(i) for i in range(1, ROWS + 1)]
    (folder / name).write_text("\n".join([f"{header},pad", *(",".join([*values, PAD]) for values in rows)]) + "\n")
    return rows


@pytest.fixture
def large(tmp_path) -> tuple[pathlib.Path, list[list[str]], list[list[str]]]:
    folder = tmp_path / "large"
    folder.mkdir()
    widening = write(folder, "widening.csv", "id,n,day,since", widening_row)
    safe_path = write(folder, "safe_path.csv", "id,flag,at", safe_path_row)
    assert (folder / "widening.csv").stat().st_size > 12.5 * 2**20
    return folder, widening, safe_path


def run(warehouse: Warehouse, folder: pathlib.Path, *args: str):
    """`meltano <args>` on the folder's files, with the plans of this schema's runs (a run after
    another one of the same test reuses the plan that run's sync ended with)."""
    env = pipeline_env(warehouse, None, TAP_WISEROCK_CSV_DATA_DIR=str(folder), TAP_WISEROCK_CSV_FILES="[]",
                       TAP_WISEROCK_CSV_SAMPLE_BYTES=SAMPLE_BYTES, TAP_WISEROCK_CSV_BATCH_FILE_MAX_BYTES=BATCH_FILE_BYTES,
                       TAP_WISEROCK_CSV_CACHE_DIR=str(folder.parent / f"plans-{warehouse.schema}"))
    return meltano(*args, env=env)


def loaded(warehouse: Warehouse) -> dict[str, tuple[dict[str, str], list[tuple]]]:
    """Each table's column types and rows, values as text (dates and instants in ISO form, in UTC)."""
    return {
        "widening": (warehouse.column_types("stg_wiserock_csv_widening"), warehouse.query(
            "select t.id::text, n, day, to_char(since, 'YYYY-MM-DD') from stg_wiserock_csv_widening t order by t.id")),
        "safe_path": (warehouse.column_types("stg_wiserock_csv_safe_path"), warehouse.query(
            "select t.id::text, flag, to_char(at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
            "from stg_wiserock_csv_safe_path t order by t.id")),
    }


def test_large_files_load_exactly_in_both_modes_without_a_pass_before_the_first_row(warehouse, second_warehouse,
                                                                                     large):
    folder, widening, safe_path = large
    tables = []
    for environment, house in (("standard-targets", warehouse), ("dev", second_warehouse)):
        result = run(house, folder, "--environment", environment, "run", "tap-wiserock-csv", "target-postgres")
        assert result.returncode == 0, result.stderr[-3000:]
        log = result.stderr
        assert log.count("from a sample of 64 KB") == 2  # discovery read neither file whole
        assert "column 'n' integer -> number ('2.50' on line 40001)" in log
        assert "column 'n' number -> string ('n/a' on line 54301); column 'day' date -> string" in log
        assert "column 'flag' boolean -> string ('maybe' on line 54301): the rows already sent cannot" in log
        assert "stg_wiserock_csv_safe_path: the tap sends stream 'stg_wiserock_csv_safe_path' again" in log
        tables.append(loaded(house))
    assert tables[0] == tables[1]
    types, rows = tables[0]["widening"]
    assert types == {"id": "bigint", "n": "text", "day": "text", "since": "date", "pad": "text"}
    assert rows == [tuple(values) for values in widening]  # every value as the file wrote it
    types, rows = tables[0]["safe_path"]
    assert types == {"id": "bigint", "flag": "text", "at": "timestamp with time zone", "pad": "text"}
    assert rows == [tuple(values) for values in safe_path]


def test_a_rerun_of_the_unchanged_files_takes_the_types_they_ended_with(warehouse, large):
    folder, _, _ = large
    first = run(warehouse, folder, "run", "tap-wiserock-csv", "target-postgres")
    assert first.returncode == 0 and first.stderr.count("from a sample") == 2, first.stderr[-3000:]
    before = loaded(warehouse)
    again = run(warehouse, folder, "run", "tap-wiserock-csv", "target-postgres")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("Reusing the plan") == 2 and "Typed" not in again.stderr
    assert "exactly" not in again.stderr and "again" not in again.stderr
    assert loaded(warehouse) == before


def test_a_standard_target_gets_each_file_typed_first_in_its_environment(warehouse, large):
    """MeltanoLabs' target-postgres cannot change a column's type within a run: in the environment
    standard-targets the tap types every file before its first row (sample_bytes 0), as before."""
    folder, widening, safe_path = large
    env = pipeline_env(warehouse, None, TAP_WISEROCK_CSV_DATA_DIR=str(folder), TAP_WISEROCK_CSV_FILES="[]",
                       TAP_WISEROCK_CSV_CACHE_DIR=str(folder.parent / "plans"))
    result = meltano("--environment", "standard-targets", "run", "tap-wiserock-csv", "target-postgres-meltanolabs",
                     env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("from its content") == 2 and "from a sample" not in result.stderr
    tables = loaded(warehouse)
    assert tables["widening"][1] == [tuple(values) for values in widening]
    assert tables["safe_path"][1] == [tuple(values) for values in safe_path]
