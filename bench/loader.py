"""`python -m bench.loader [--rows N]`: target-wiserock-postgres against COPY, with peak RSS.

In one run, into the local PostgreSQL: COPY of the bench CSV into the empty typed table (the
ceiling), then the loader alone fed parquet BATCH files (first run into a new table, second run
with every row unchanged, second run with every row changed) and fed the recorded RECORD stream
of the same rows (first and second run), at N and N/10 rows. The parquet files and the RECORD
stream are tap-wiserock-csv's own output, recorded once (the "every row changed" files from the
same ids with other scores). Each loader run gets fresh copies of the batch files (it deletes
them) and only the loader is timed. Nothing here asserts a speed.
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
from psycopg import sql

from bench.csv_paths import copy_ceiling, settle
from bench.data import write_csv
from bench.measure import Row, markdown_table, run_measured
from elt.database import scratch_server_env, stop_embedded
from elt.settings import PROJECT_DIR, Database
from target_wiserock_postgres import batch_roots, tables
from target_wiserock_postgres.types import column_type

OUT = PROJECT_DIR / "bench" / "out" / "loader"
SCHEMA = "wiserock_bench_loader"
STREAM = "people"
BIN = pathlib.Path(sys.executable).parent
TARGET = "target-wiserock-postgres"
TAP = "tap-wiserock-csv"
BATCH_ROWS = 100_000  # as meltano.yml's batch_config for the CSV tap
# The stream's SCHEMA as the CSV tap describes the bench file (for the merge-only rows).
PROPERTIES = {
    "id": {"type": ["integer"]}, "first_name": {"type": ["string", "null"]}, "last_name": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"]}, "activeflag": {"type": ["boolean", "null"]},
    "created_at": {"type": ["string", "null"], "format": "date-time"}, "score": {"type": ["number", "null"]},
    "city": {"type": ["string", "null"]}, "comment": {"type": ["string", "null"]},
}


def tap_output(csv_path: pathlib.Path, name: str, *, batches: bool) -> pathlib.Path:
    """tap-wiserock-csv's messages for the CSV (RECORD messages, or BATCH messages naming parquet
    files kept beside them), recorded once and reused: each loader run gets fresh copies."""
    folder = OUT / name
    messages = folder / "messages.jsonl"
    if messages.exists() and messages.stat().st_size:
        return messages
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "files").mkdir(parents=True)
    config = {"data_dir": str(csv_path.parent), "emit_activate_version_messages": True, "cache_dir": "",
              "stream_maps": {csv_path.stem: {"__alias__": f"'{STREAM}'"}}}
    if batches:
        config["batch_config"] = {"encoding": {"format": "parquet", "compression": "none"},
                                  "storage": {"root": (folder / "files").as_uri()}, "batch_size": BATCH_ROWS}
    (folder / "tap-config.json").write_text(json.dumps(config))
    with messages.open("wb") as output:
        subprocess.run([str(BIN / TAP), "--config", str(folder / "tap-config.json")], stdout=output,
                       stderr=subprocess.DEVNULL, check=True, cwd=folder, env={**os.environ, "TAP_WISEROCK_CSV_FILES": "[]"})
    return messages


def changed_csv(csv_path: pathlib.Path, rows: int) -> pathlib.Path:
    """The same ids with other scores (another seed): a second run in which every row changed."""
    return write_csv(OUT / f"csv-{rows}-changed" / csv_path.name, rows, seed=2)


def batch_input(recorded: pathlib.Path, rows: int) -> pathlib.Path:
    """Fresh copies of the recorded batch files, and the recorded messages naming the copies."""
    folder = OUT / f"run-{rows}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    lines = []
    for line in recorded.read_text().splitlines():
        message = json.loads(line)
        if message.get("type") == "BATCH":
            copies = []
            for url in message["manifest"]:
                source = batch_roots.file_path(STREAM, url)
                copies.append(pathlib.Path(shutil.copy(source, folder / source.name)).resolve().as_uri())
            message["manifest"] = copies
        lines.append(json.dumps(message))
    path = folder / "messages.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def loader_config(env: dict[str, str]) -> pathlib.Path:
    path = OUT / "target-config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # The copies of the batch files are under OUT: the loader's to read and delete.
    config = {**Database.from_env({**env, "DB_SCHEMA": SCHEMA}).loader_config(), "batch_roots": [str(OUT)]}
    path.write_text(json.dumps(config))
    return path


def run_loader(env: dict[str, str], config: pathlib.Path, messages: pathlib.Path, label: str, rows: int,
               ceiling: float) -> Row:
    command = ["sh", "-c", f'"{BIN / TARGET}" --config "{config}" < "{messages}"; exit $?']
    settle(env)
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
    unchanged = tap_output(csv_path, f"batches-{rows}", batches=True)
    changed = tap_output(changed_csv(csv_path, rows), f"batches-{rows}-changed", batches=True)
    records = tap_output(csv_path, f"records-{rows}", batches=False)

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
