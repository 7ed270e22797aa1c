"""`make bench`: every path measured in one run, on this machine, against its ceiling.

CSV: psycopg COPY of the 1,000,000-row file into an empty typed table (the median of three
runs) is the ceiling; the project's loader alone (parquet BATCH files and the RECORD stream,
first and second run), the CSV tap alone writing parquet batch files, `meltano run
tap-wiserock-csv` with the project's loader and with the stock loader, pandas, dlt and sling
are compared with it. API: a plain HTTP client paging through the sandbox with keyset paging is
the ceiling, with and without 50 ms of latency per request; `meltano run tap-wiserock-api` with
each loader is compared with it. Peak RSS of the tap and the loader is sampled at two sizes to
show how memory grows. Nothing here asserts a speed.
"""

from __future__ import annotations

import os
import sys
import time

from bench import api_paths, csv_paths
from bench.data import write_csv
from bench.loader import loader_rows
from bench.measure import markdown_table
from elt.database import scratch_server_env, stop_embedded
from elt.settings import PROJECT_DIR

OUT = PROJECT_DIR / "bench" / "out"
RESULTS = PROJECT_DIR / "bench" / "results.md"
CSV_ROWS = int(os.environ.get("BENCH_CSV_ROWS", "1000000"))
NOTES = int(os.environ.get("BENCH_NOTES", "100000"))
SMALL_SHARE = 10  # the smaller run of each path, to show memory growth


def main() -> None:
    embedded_dir = OUT / "embedded"
    embedded_dir.mkdir(parents=True, exist_ok=True)
    server = scratch_server_env(dict(os.environ), embedded_dir)
    env = {**os.environ, **server, "DB_SCHEMA": csv_paths.SCHEMA}
    cache = OUT / "csv-plan-cache"

    small_rows = CSV_ROWS // SMALL_SHARE
    big = write_csv(OUT / f"csv-{CSV_ROWS}" / "people.csv", CSV_ROWS)
    small = write_csv(OUT / f"csv-{small_rows}" / "people.csv", small_rows)
    copy = csv_paths.copy_ceiling(env, big, CSV_ROWS)
    csv_rows = [copy]
    csv_rows += loader_rows(env, big, CSV_ROWS, ceiling=copy.rate)
    csv_rows += loader_rows(env, small, small_rows, ceiling=copy.rate)
    sizes = [(small, small_rows), (big, CSV_ROWS)]
    csv_rows += csv_paths.tap_alone_rows(big, CSV_ROWS, copy.rate, cache)
    csv_rows += csv_paths.project_loader_rows(env, sizes, copy.rate, cache)
    csv_rows += csv_paths.stock_loader_rows(env, sizes, copy.rate, cache)
    csv_paths.reset_schema(env)
    csv_rows.append(csv_paths.pandas_to_sql(env, big, CSV_ROWS, copy.rate))
    csv_rows += csv_paths.peer_rows(env, big, CSV_ROWS, copy.rate)

    api_rows = api_paths.api_rows(env, NOTES // SMALL_SHARE, stock=True)
    api_rows += api_paths.api_rows(env, NOTES, stock=True)
    api_rows += api_paths.api_rows(env, NOTES, latency_ms=50)
    csv_paths.reset_schema(env)
    csv_paths.ensure_clean_batches()
    stop_embedded(embedded_dir)

    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, server {server.get('DB_HOST', 'embedded')}"
    text = (f"Measured {time.strftime('%Y-%m-%d')} on {machine}.\n\n"
            f"CSV, {CSV_ROWS:,}-row file (share of COPY's rows/s):\n\n{markdown_table(csv_rows)}\n\n"
            f"API, the sandbox with {NOTES:,} notes (share of the plain client's rows/s):\n\n{markdown_table(api_rows)}\n")
    RESULTS.write_text(text)
    print(text)
    print(f"written to {RESULTS.relative_to(PROJECT_DIR)}")


if __name__ == "__main__":
    main()
