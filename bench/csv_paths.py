"""The CSV side of `make bench`: COPY (the ceiling), `meltano run` with each loader, the peers."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import pandas as pd
import psycopg
import sqlalchemy
from psycopg import sql

from bench import peers
from bench.data import TYPED_TABLE
from bench.measure import Measurement, Row, run_measured
from elt.settings import PROJECT_DIR, Database

SCHEMA = "wiserock_bench"
BIN = pathlib.Path(sys.executable).parent
TAP = "tap-wiserock-csv"
# How each loader's process is told apart in the process tree (both live under a directory
# named after their Meltano plugin).
PROJECT_LOADER = "target-wiserock-postgres"
STOCK_LOADER = "target-postgres-meltanolabs/venv"


def connect(env: dict[str, str]) -> psycopg.Connection:
    return psycopg.connect(**Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params, autocommit=True)


def settle(env: dict[str, str], *, quiet_for: float = 60) -> None:
    """Start each measured run from a quiet server: earlier runs' dirty pages written out, and
    their autovacuum (1M dead rows after a replaced table) finished rather than competing."""
    # A role without pg_checkpoint gets noisier numbers, not wrong ones.
    with connect(env) as connection:
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            connection.execute("checkpoint")
        deadline = time.monotonic() + quiet_for
        while time.monotonic() < deadline and connection.execute(
                "select count(*) from pg_stat_activity where backend_type = 'autovacuum worker'").fetchone()[0]:
            time.sleep(0.5)


def reset_schema(env: dict[str, str]) -> None:
    with connect(env) as connection:
        connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(SCHEMA)))
        connection.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))


def copy_ceiling(env: dict[str, str], csv_path: pathlib.Path, rows: int, *, runs: int = 3) -> Row:
    """psycopg COPY of the file into an empty typed table: what PostgreSQL itself can take. The
    median of `runs` runs: one COPY varies by up to 1.7x from run to run here (WAL and checkpoint
    timing), and every share in the table is against this number."""
    timings = []
    with connect(env) as connection:
        connection.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(SCHEMA)))
        table = sql.Identifier(SCHEMA, "copy_ceiling")
        for _ in range(runs):
            connection.execute(sql.SQL("drop table if exists {}").format(table))
            connection.execute(sql.SQL(TYPED_TABLE).format(table=table))
            settle(env)
            started = time.perf_counter()
            with connection.cursor().copy(sql.SQL("copy {} from stdin (format csv, header true)").format(table)) as copy, \
                    csv_path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    copy.write(block)
            timings.append(time.perf_counter() - started)
        connection.execute(sql.SQL("drop table {}").format(table))
    return Row(f"COPY into the empty typed table (CSV ceiling, median of {runs})", rows, statistics.median(timings))


def meltano_measured(env: dict[str, str], tap: str, loader: str, *, environment: str = "dev") -> Measurement:
    """`meltano run` of one pipeline, from a quiet server; a failure ends the bench."""
    plugin = "target-postgres-meltanolabs" if loader == STOCK_LOADER else "target-postgres"
    command = [str(BIN / "meltano"), "--environment", environment, "run", "--state-id-suffix=bench", tap, plugin]
    settle(env)
    measured = run_measured(command, labels=[tap, loader], env=env, cwd=str(PROJECT_DIR), root_label="meltano")
    if measured.returncode != 0:
        sys.stderr.write(measured.output[-5000:])
        raise SystemExit(f"bench: {' '.join(command)} failed")
    return measured


def meltano_run(env: dict[str, str], tap: str, loader: str, *, environment: str = "dev") -> tuple[float, dict[str, float]]:
    """`meltano run` of one pipeline: seconds, and the peak RSS of the tap's and the loader's processes."""
    measured = meltano_measured(env, tap, loader, environment=environment)
    return measured.seconds, measured.peak_rss_mb


def rss_cell(peaks: dict[str, float], tap: str, loader: str) -> str:
    return f"tap {peaks[tap]:.0f} / loader {peaks[loader]:.0f}"


def csv_env(env: dict[str, str], csv_path: pathlib.Path, cache: pathlib.Path) -> dict[str, str]:
    return {**env, "TAP_WISEROCK_CSV_DATA_DIR": str(csv_path.parent), "TAP_WISEROCK_CSV_FILES": "[]",
            "TAP_WISEROCK_CSV_CACHE_DIR": str(cache)}


def project_loader_rows(env: dict[str, str], sizes: list[tuple[pathlib.Path, int]], ceiling: float,
                        cache: pathlib.Path) -> list[Row]:
    """The project's path: a first load into an empty schema (no cached typing plan), then a second run."""
    result = []
    for csv_path, rows in sizes:
        reset_schema(env)
        shutil.rmtree(cache, ignore_errors=True)
        seconds, peaks = meltano_run(csv_env(env, csv_path, cache), TAP, PROJECT_LOADER)
        result.append(Row(f"meltano run {TAP} target-postgres (project loader), first load", rows, seconds, ceiling,
                          rss_cell(peaks, TAP, PROJECT_LOADER)))
    csv_path, rows = sizes[-1]
    seconds, peaks = meltano_run(csv_env(env, csv_path, cache), TAP, PROJECT_LOADER)
    result.append(Row(f"meltano run {TAP} target-postgres (project loader), second run", rows, seconds, ceiling,
                      rss_cell(peaks, TAP, PROJECT_LOADER)))
    return result


def tap_alone_rows(csv_path: pathlib.Path, rows: int, ceiling: float, cache: pathlib.Path) -> list[Row]:
    """The CSV tap by itself writing parquet batch files (messages to /dev/null, files deleted
    after): first with no cached typing plan (a file over sample_bytes typed from a sample, every
    value checked as it is sent), then with the plan that run cached."""
    result = []
    shutil.rmtree(cache, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=PROJECT_DIR / "bench" / "out") as folder:
        files = pathlib.Path(folder) / "files"
        config = {"data_dir": str(csv_path.parent.resolve()), "cache_dir": str(cache.resolve()),
                  "emit_activate_version_messages": True,
                  "batch_config": {"encoding": {"format": "parquet", "compression": "none"},
                                   "storage": {"root": files.as_uri()}, "batch_size": 100_000}}
        config_path = pathlib.Path(folder) / "tap-config.json"
        config_path.write_text(json.dumps(config))
        command = ["sh", "-c", f'"{BIN / TAP}" --config "{config_path}" > /dev/null; exit $?']
        for label in ("no cached typing plan (a sample, every value checked)", "the plan that run cached"):
            files.mkdir()
            measured = run_measured(command, labels=[TAP], env={**os.environ, "TAP_WISEROCK_CSV_FILES": "[]"}, cwd=folder)
            if measured.returncode != 0:
                sys.stderr.write(measured.output[-5000:])
                raise SystemExit(f"bench: {TAP} failed on {csv_path}")
            shutil.rmtree(files)
            result.append(Row(f"{TAP} alone, parquet BATCH files, {label}", rows, measured.seconds, ceiling,
                              f"{measured.peak_rss_mb[TAP]:.0f}"))
    return result


def stock_loader_rows(env: dict[str, str], sizes: list[tuple[pathlib.Path, int]], ceiling: float,
                      cache: pathlib.Path) -> list[Row]:
    """MeltanoLabs' target-postgres 0.8.1 (the stock loader), fed RECORD messages, as before."""
    result = []
    for csv_path, rows in sizes:
        reset_schema(env)
        seconds, peaks = meltano_run(csv_env(env, csv_path, cache), TAP, STOCK_LOADER, environment="standard-targets")
        result.append(Row(f"meltano run {TAP} target-postgres-meltanolabs (stock loader)", rows, seconds, ceiling,
                          rss_cell(peaks, TAP, STOCK_LOADER)))
    return result


def pandas_to_sql(env: dict[str, str], csv_path: pathlib.Path, rows: int, ceiling: float) -> Row:
    params = Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params
    url = sqlalchemy.engine.URL.create("postgresql+psycopg", username=params.get("user"), password=params.get("password"),
                                       host=params.get("host"), port=params.get("port"), database=params.get("dbname"))
    engine = sqlalchemy.create_engine(url)
    settle(env)
    started = time.perf_counter()
    frame = pd.read_csv(csv_path)
    frame.to_sql("pandas_to_sql", engine, schema=SCHEMA, if_exists="replace", index=False)
    seconds = time.perf_counter() - started
    engine.dispose()
    return Row("pandas read_csv + to_sql (naive script)", rows, seconds, ceiling)


def peer_rows(env: dict[str, str], csv_path: pathlib.Path, rows: int, ceiling: float) -> list[Row]:
    """dlt and sling, each a first load with `replace` into an empty schema."""
    url = peers.tcp_url(Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params)
    if url is None or not peers.BENCH_PYTHON.exists():
        print("bench: peers left out (they need a TCP server and bench/.venv; `make bench` builds it)", file=sys.stderr)
        return []
    result = []
    reset_schema(env)
    settle(env)
    measured = run_measured(peers.dlt_command(csv_path, url, SCHEMA, "people_dlt"), labels=["dlt_load"],
                            env=dict(os.environ), cwd=str(PROJECT_DIR), include_root=True)
    if measured.returncode != 0:
        raise SystemExit(f"bench: the dlt peer failed:\n{measured.output[-3000:]}")
    result.append(Row("dlt 1.31: pyarrow CSV reader, replace (peer)", rows, measured.seconds, ceiling,
                      f"{measured.peak_rss_mb['dlt_load']:.0f}"))
    binary = peers.sling_binary()
    if binary is None:
        print("bench: sling left out (its wheel ships a binary for Linux x86_64 only)", file=sys.stderr)
        return result
    settle(env)
    with tempfile.TemporaryDirectory() as home:
        measured = run_measured(peers.sling_command(binary, csv_path, SCHEMA, "people_sling"), labels=["sling"],
                                env={**os.environ, **peers.sling_env(url, pathlib.Path(home))}, cwd=home,
                                include_root=True)
    if measured.returncode != 0:
        raise SystemExit(f"bench: the sling peer failed:\n{measured.output[-3000:]}")
    result.append(Row("sling 1.4.11: full-refresh (peer)", rows, measured.seconds, ceiling,
                      f"{measured.peak_rss_mb['sling']:.0f}"))
    reset_schema(env)
    return result


def ensure_clean_batches() -> None:
    """The loader deletes every batch file it was sent: the folder must be empty after the bench."""
    folder = PROJECT_DIR / ".meltano" / "run" / "batches"
    left = list(folder.glob("*")) if folder.exists() else []
    if left:
        print(f"bench: warning: {len(left)} batch files left in {folder}", file=sys.stderr)
