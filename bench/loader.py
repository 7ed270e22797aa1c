"""`python -m bench.loader [--rows N]`: target-wiserock-postgres against COPY, with peak RSS.

In one run, into the local PostgreSQL: COPY of the bench CSV into the empty typed table (the
ceiling), then the loader alone fed parquet BATCH files (first run into a new table, second run
with every row unchanged, second run with every row changed) and fed the recorded RECORD stream
of the same rows (first and second run), at N and N/10 rows. The parquet files are made here
with pyarrow, typed as the taps type them (numbers as exact decimal strings, date-times in UTC);
the RECORD stream is tap-wiserock-csv's output, recorded once. Each loader run gets fresh copies
of the batch files (it deletes them) and only the loader is timed. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from bench.csv_paths import copy_ceiling
from bench.data import write_csv
from bench.measure import Row, markdown_table, run_measured
from elt.database import scratch_server_env, stop_embedded
from elt.settings import PROJECT_DIR, Database
from target_wiserock_postgres import tables
from target_wiserock_postgres.types import column_type

OUT = PROJECT_DIR / "bench" / "out" / "loader"
SCHEMA = "wiserock_bench_loader"
STREAM = "people"
BIN = pathlib.Path(sys.executable).parent
TARGET = "target-wiserock-postgres"
FILES_PER_RUN = 10
# The stream's SCHEMA as the CSV tap describes the bench file.
PROPERTIES = {
    "id": {"type": ["integer"]}, "first_name": {"type": ["string", "null"]}, "last_name": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"]}, "activeflag": {"type": ["boolean", "null"]},
    "created_at": {"type": ["string", "null"], "format": "date-time"}, "score": {"type": ["number", "null"]},
    "city": {"type": ["string", "null"]}, "comment": {"type": ["string", "null"]},
}
READ_OPTIONS = pacsv.ConvertOptions(
    column_types={"id": pa.int64(), "activeflag": pa.bool_(), "created_at": pa.timestamp("us"), "score": pa.string()},
    true_values=["Y", "yes", "true", "t"], false_values=["N", "no", "False", "f"], strings_can_be_null=False)


def parquet_sources(csv_path: pathlib.Path, rows: int, *, changed: bool) -> list[pathlib.Path]:
    """The CSV as FILES_PER_RUN parquet files (kept; each run loads copies), made once."""
    folder = OUT / f"parquet-{rows}{'-changed' if changed else ''}"
    files = sorted(folder.glob("*.parquet"))
    if len(files) == FILES_PER_RUN:
        return files
    folder.mkdir(parents=True, exist_ok=True)
    table = pacsv.read_csv(csv_path, convert_options=READ_OPTIONS)
    table = table.set_column(table.schema.get_field_index("created_at"), "created_at",
                             table["created_at"].cast(pa.timestamp("us", tz="UTC")))  # the taps emit UTC
    if changed:
        table = table.set_column(table.schema.get_field_index("comment"), "comment",
                                 pc.binary_join_element_wise(table["comment"], "changed", " "))
    size = -(-table.num_rows // FILES_PER_RUN)
    files = [folder / f"part-{index:02d}.parquet" for index in range(FILES_PER_RUN)]
    for index, path in enumerate(files):
        pq.write_table(table.slice(index * size, size), path)
    return files


def batch_input(sources: list[pathlib.Path], rows: int) -> pathlib.Path:
    """Fresh copies of the batch files and the SCHEMA/BATCH/ACTIVATE_VERSION messages naming them."""
    folder = OUT / f"run-{rows}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    messages = [{"type": "SCHEMA", "stream": STREAM, "schema": {"properties": PROPERTIES}, "key_properties": ["id"]}]
    for source in sources:
        copy = shutil.copy(source, folder / source.name)
        messages.append({"type": "BATCH", "stream": STREAM, "encoding": {"format": "parquet", "compression": "none"},
                         "manifest": [pathlib.Path(copy).resolve().as_uri()]})
    messages.append({"type": "ACTIVATE_VERSION", "stream": STREAM, "version": 1})
    path = folder / "messages.jsonl"
    path.write_text("".join(json.dumps(message) + "\n" for message in messages))
    return path


def record_stream(csv_path: pathlib.Path, rows: int) -> pathlib.Path:
    """tap-wiserock-csv's RECORD output for the CSV, recorded once."""
    path = OUT / f"records-{rows}.jsonl"
    if path.exists() and path.stat().st_size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    config = OUT / "tap-config.json"
    config.write_text(json.dumps({"data_dir": str(csv_path.parent), "emit_activate_version_messages": True}))
    with path.open("wb") as output:
        subprocess.run([str(BIN / "tap-wiserock-csv"), "--config", str(config)], stdout=output, stderr=subprocess.DEVNULL,
                       check=True, cwd=OUT, env={**os.environ, "TAP_WISEROCK_CSV_FILES": "[]"})
    return path


def loader_config(env: dict[str, str]) -> pathlib.Path:
    params = Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params
    config = {"host": params.get("host"), "port": params.get("port", 5432), "user": params.get("user"),
              "password": params.get("password"), "database": params.get("dbname"), "default_target_schema": SCHEMA}
    path = OUT / "target-config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({key: value for key, value in config.items() if value is not None}))
    return path


def run_loader(env: dict[str, str], config: pathlib.Path, messages: pathlib.Path, label: str, rows: int,
               ceiling: float) -> Row:
    command = ["sh", "-c", f'"{BIN / TARGET}" --config "{config}" < "{messages}"; exit $?']
    measured = run_measured(command, labels=[TARGET], env=env, cwd=str(OUT))
    if measured.returncode != 0:
        sys.stderr.write(measured.output[-5000:])
        raise SystemExit(f"bench: {TARGET} failed on {messages}")
    return Row(label, rows, measured.seconds, ceiling, f"{measured.peak_rss_mb[TARGET]:.0f}")


def connect(env: dict[str, str]) -> psycopg.Connection:
    return psycopg.connect(**Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params, autocommit=True)


def drop_table(env: dict[str, str]) -> None:
    with connect(env) as connection:
        connection.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(SCHEMA)))
        connection.execute(sql.SQL("drop table if exists {}").format(tables.relation(SCHEMA, STREAM)))


def merge_only(env: dict[str, str], rows: int, ceiling: float, *, changed: bool) -> list[Row]:
    """The end-of-run merge alone, both ways (diff by key; delete all + insert all), on the table
    the parquet runs left: the rows COPYed into a temp table first, untimed, then rolled back."""
    columns = {name: column_type(prop) for name, prop in PROPERTIES.items()}
    result = []
    for replace_all in (False, True):
        with connect(env) as connection, connection.transaction(force_rollback=True):
            temp = sql.Identifier("wr_load_bench")
            tables.create_table(connection, temp, columns, ["id"], temporary=True)
            changes = sql.SQL("comment || ' again'" if changed else "comment")
            connection.execute(sql.SQL("insert into {} select id, first_name, last_name, email, activeflag, created_at, "
                                       "score, city, {} from {}").format(temp, changes, tables.relation(SCHEMA, STREAM)))
            started = time.perf_counter()
            tables.merge_snapshot(connection, SCHEMA, STREAM, temp, columns, ["id"], rows, replace_all=replace_all)
            seconds = time.perf_counter() - started
        way = "delete all + insert all" if replace_all else "diff by key"
        result.append(Row(f"merge step alone, {way}, {'every row changed' if changed else 'unchanged'}",
                          rows, seconds, ceiling))
    return result


def loader_rows(env: dict[str, str], csv_path: pathlib.Path, rows: int, *, ceiling: float | None = None) -> list[Row]:
    """The loader's rows of the benchmark table at `rows` rows; `ceiling` is COPY's rows/s (measured when None)."""
    result: list[Row] = []
    if ceiling is None:
        copy = copy_ceiling(env, csv_path, rows)
        ceiling = copy.rate
        result.append(copy)
    config = loader_config(env)
    unchanged, changed = parquet_sources(csv_path, rows, changed=False), parquet_sources(csv_path, rows, changed=True)
    records = record_stream(csv_path, rows)

    drop_table(env)
    for label, sources in (("first run (new table)", unchanged), ("second run, unchanged", unchanged),
                           ("second run, every row changed", changed)):
        result.append(run_loader(env, config, batch_input(sources, rows), f"loader, parquet BATCH files, {label}",
                                 rows, ceiling))
    if rows >= 1_000_000:
        result += merge_only(env, rows, ceiling, changed=False) + merge_only(env, rows, ceiling, changed=True)
    drop_table(env)
    for label in ("first run (new table)", "second run, unchanged"):
        result.append(run_loader(env, config, records, f"loader, RECORD stream, {label}", rows, ceiling))
    drop_table(env)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loader", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the bench CSV (default 1,000,000)")
    args = parser.parse_args()
    embedded_dir = OUT / "embedded"
    embedded_dir.mkdir(parents=True, exist_ok=True)
    server = scratch_server_env(dict(os.environ), embedded_dir)
    env = {**os.environ, **server}
    big = write_csv(PROJECT_DIR / "bench" / "out" / f"csv-{args.rows}" / "people.csv", args.rows)
    small_rows = args.rows // 10
    small = write_csv(PROJECT_DIR / "bench" / "out" / f"csv-{small_rows}" / "people.csv", small_rows)
    rows = loader_rows(env, big, args.rows)
    rows += loader_rows(env, small, small_rows, ceiling=rows[0].rate)
    stop_embedded(embedded_dir)

    print(f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"server {server.get('DB_HOST', 'embedded')}.\n")
    print(markdown_table(rows, share_header="share of COPY"))


if __name__ == "__main__":
    main()
