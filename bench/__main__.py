"""`make bench`: every path measured in one run, on this machine, against its ceiling.

CSV: psycopg COPY of the file into a typed table is the ceiling; `meltano run
tap-wiserock-csv target-postgres` and pandas read_csv + to_sql are compared with it.
API: a plain HTTP client paging through the sandbox with keyset paging is the ceiling;
`meltano run tap-wiserock-api target-postgres` is compared with it. Peak RSS of tap and
target is sampled at two sizes to show how memory grows. Nothing here asserts a speed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import typing as t

import pandas as pd
import psycopg
import requests
import sqlalchemy
from psycopg import sql

from bench.data import TYPED_TABLE, write_csv
from bench.measure import run_measured
from elt.database import scratch_server_env, stop_embedded
from elt.settings import PROJECT_DIR, Database
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD

OUT = PROJECT_DIR / "bench" / "out"
RESULTS = PROJECT_DIR / "bench" / "results.md"
SCHEMA = "wiserock_bench"
BIN = pathlib.Path(sys.executable).parent
CSV_ROWS = int(os.environ.get("BENCH_CSV_ROWS", "1000000"))
NOTES = int(os.environ.get("BENCH_NOTES", "100000"))
SMALL_SHARE = 10  # the smaller run of each path, to show memory growth


@dataclasses.dataclass
class Row:
    path: str
    rows: int
    seconds: float
    ceiling: float | None = None  # rows/s of the path's ceiling
    rss: str = "-"

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    def cells(self) -> list[str]:
        share = f"{self.rate / self.ceiling:.3f}" if self.ceiling else "1.000"
        return [self.path, f"{self.rows:,}", f"{self.seconds:.1f}", f"{self.rate:,.0f}", share, self.rss]


def connect(env: dict[str, str]) -> psycopg.Connection:
    return psycopg.connect(**Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params, autocommit=True)


def copy_ceiling(env: dict[str, str], csv_path: pathlib.Path, rows: int) -> Row:
    with connect(env) as connection:
        table = sql.Identifier(SCHEMA, "copy_ceiling")
        connection.execute(sql.SQL("drop table if exists {}").format(table))
        connection.execute(sql.SQL(TYPED_TABLE).format(table=table))
        started = time.perf_counter()
        with connection.cursor().copy(sql.SQL("copy {} from stdin (format csv, header true)").format(table)) as copy, \
                csv_path.open("rb") as handle:
            while block := handle.read(1 << 20):
                copy.write(block)
        return Row("psql COPY into the typed table (CSV ceiling)", rows, time.perf_counter() - started)


def pandas_to_sql(env: dict[str, str], csv_path: pathlib.Path, rows: int, ceiling: float) -> Row:
    params = Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params
    url = sqlalchemy.engine.URL.create("postgresql+psycopg", username=params.get("user"), password=params.get("password"),
                                       host=params.get("host"), port=params.get("port"), database=params.get("dbname"))
    engine = sqlalchemy.create_engine(url)
    started = time.perf_counter()
    frame = pd.read_csv(csv_path)
    frame.to_sql("pandas_to_sql", engine, schema=SCHEMA, if_exists="replace", index=False)
    seconds = time.perf_counter() - started
    engine.dispose()
    return Row("pandas read_csv + to_sql (naive script)", rows, seconds, ceiling)


@contextlib.contextmanager
def sandbox(notes: int) -> t.Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        url_file = pathlib.Path(folder) / "url"
        process = subprocess.Popen([sys.executable, "-m", "wiserock_sandbox.cli", "--users", "1000",
                                    "--notes", str(notes), "--url-file", str(url_file)], stdout=subprocess.DEVNULL)
        try:
            while not url_file.exists():
                if process.poll() is not None:
                    raise SystemExit("bench: the sandbox did not start")
                time.sleep(0.1)
            yield url_file.read_text()
        finally:
            process.terminate()
            process.wait()


def api_ceiling(url: str) -> tuple[int, float]:
    """A plain client: log in, keyset pages of 1000 over both tables, no processing."""
    http = requests.Session()
    started = time.perf_counter()
    token = http.post(f"{url}/auth/v1/token", params={"grant_type": "password"}, headers={"apikey": SANDBOX_API_KEY},
                      json={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD}, timeout=60).json()["access_token"]
    headers = {"apikey": SANDBOX_API_KEY, "Authorization": f"Bearer {token}"}
    rows = 0
    for table in ("user", "note"):
        last = None
        while True:
            params = {"select": "*", "order": "id.asc", "limit": 1000, **({"id": f"gt.{last}"} if last else {})}
            page = http.get(f"{url}/rest/v1/{table}", params=params, headers=headers, timeout=60).json()
            if not page:
                break
            rows += len(page)
            last = page[-1]["id"]
    return rows, time.perf_counter() - started


def meltano_run(env: dict[str, str], tap: str) -> tuple[float, dict[str, float]]:
    command = [str(BIN / "meltano"), "run", "--state-id-suffix=bench", tap, "target-postgres"]
    measured = run_measured(command, labels=[tap, "target-postgres"], env=env, cwd=str(PROJECT_DIR))
    if measured.returncode != 0:
        sys.stderr.write(measured.output[-5000:])
        raise SystemExit(f"bench: {' '.join(command)} failed")
    return measured.seconds, measured.peak_rss_mb


def rss_cell(peaks: dict[str, float], tap: str) -> str:
    return f"tap {peaks[tap]:.0f} / target {peaks['target-postgres']:.0f}"


def drop_schema(env: dict[str, str]) -> None:
    with connect(env) as connection:
        connection.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(SCHEMA)))
        connection.execute(sql.SQL("create schema {}").format(sql.Identifier(SCHEMA)))


def main() -> None:
    embedded_dir = OUT / "embedded"
    embedded_dir.mkdir(parents=True, exist_ok=True)
    server = scratch_server_env(dict(os.environ), embedded_dir)
    env = {**os.environ, **server, "DB_SCHEMA": SCHEMA, "TAP_WISEROCK_CSV_FILES": "[]"}
    drop_schema(env)
    rows: list[Row] = []

    big = write_csv(OUT / f"csv-{CSV_ROWS}" / "people.csv", CSV_ROWS)
    small = write_csv(OUT / f"csv-{CSV_ROWS // SMALL_SHARE}" / "people.csv", CSV_ROWS // SMALL_SHARE)
    copy = copy_ceiling(env, big, CSV_ROWS)
    rows.append(copy)
    for path, count in ((small, CSV_ROWS // SMALL_SHARE), (big, CSV_ROWS)):
        seconds, peaks = meltano_run({**env, "TAP_WISEROCK_CSV_DATA_DIR": str(path.parent)}, "tap-wiserock-csv")
        rows.append(Row("meltano run tap-wiserock-csv target-postgres", count, seconds, copy.rate,
                        rss_cell(peaks, "tap-wiserock-csv")))
    rows.append(pandas_to_sql(env, big, CSV_ROWS, copy.rate))

    for notes in (NOTES // SMALL_SHARE, NOTES):
        with sandbox(notes) as url:
            api_env = {**env, "API_URL": url, "API_KEY": SANDBOX_API_KEY, "API_EMAIL": SANDBOX_EMAIL,
                       "API_PASSWORD": SANDBOX_PASSWORD}
            count, seconds = api_ceiling(url)
            ceiling = Row("plain HTTP client, keyset pages of 1000 (API ceiling)", count, seconds)
            seconds, peaks = meltano_run(api_env, "tap-wiserock-api")
            rows += [ceiling, Row("meltano run tap-wiserock-api target-postgres", count, seconds, ceiling.rate,
                                  rss_cell(peaks, "tap-wiserock-api"))]
    drop_schema(env)
    stop_embedded(embedded_dir)

    header = ["path", "rows", "seconds", "rows/s", "share of ceiling", "peak RSS MB"]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, server {server.get('DB_HOST', 'embedded')}"
    text = f"Measured {time.strftime('%Y-%m-%d')} on {machine}.\n\n" + "\n".join(table) + "\n"
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(PROJECT_DIR)}")


if __name__ == "__main__":
    main()
