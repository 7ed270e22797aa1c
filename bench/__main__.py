"""`make bench`: every path measured in one run, on this machine, against its ceiling.

CSV: psycopg COPY of the 1,000,000-row file into an empty typed table (the median of three
runs) is the ceiling; the project's loader alone (parquet BATCH files and the RECORD stream,
first and second run), the CSV tap alone writing parquet batch files, `meltano run
tap-wiserock-csv` with the project's loader and with the stock loader, pandas, dlt and sling
are compared with it. API (`python -m bench api` runs it alone, into bench/results-api.md): on the
sandbox's note table keyed by bigint and by uuid (BENCH_NOTES rows, 300,000 by default), at 0
and 100 ms per request, a plain HTTP client paging by key is the baseline; `meltano run
tap-wiserock-api target-postgres` with the service key and with the anon key and a login, and
dlt's rest_api source, are compared with it. Peak RSS of the taps and loaders is sampled at two
sizes to show how memory grows. Nothing here asserts a speed.
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
RESULTS_API = PROJECT_DIR / "bench" / "results-api.md"
NOTES = int(os.environ.get("BENCH_NOTES", "300000"))
SMALL_SHARE = 10  # the smaller run of each path, to show memory growth
SECTIONS = ("api",)  # what `python -m bench <section>` may run alone


def main(argv: list[str] | None = None) -> None:
    sections = sys.argv[1:] if argv is None else argv
    if sections and (len(sections) > 1 or sections[0] not in SECTIONS):
        raise SystemExit(f"bench: unknown section {' '.join(sections)!r}; `python -m bench` runs everything, "
                         f"`python -m bench api` the API part alone")
    embedded_dir = OUT / "embedded"
    embedded_dir.mkdir(parents=True, exist_ok=True)
    server = scratch_server_env(dict(os.environ), embedded_dir)
    env = {**os.environ, **server, "DB_SCHEMA": csv_paths.SCHEMA}
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, server {server.get('DB_HOST', 'embedded')}"
    header = f"Measured {time.strftime('%Y-%m-%d')} on {machine}.\n\n"
    if sections == ["api"]:
        text, results = header + api_section(env), RESULTS_API
    else:
        text, results = header + csv_section(env) + "\n" + api_section(env), RESULTS
    csv_paths.reset_schema(env)
    csv_paths.ensure_clean_batches()
    stop_embedded(embedded_dir)
    results.write_text(text)
    print(text)
    print(f"written to {results.relative_to(PROJECT_DIR)}")


def api_section(env: dict[str, str]) -> str:
    api = api_paths.api_results(env, NOTES, small=NOTES // SMALL_SHARE)
    return (f"API, the sandbox with {api_paths.USERS:,} users and {NOTES:,} notes, pages capped at 1000 rows "
            f"(seconds, rows/s, and the share of the plain client's rows/s in the same row):\n\n"
            f"{api_paths.grid_table(api)}\n\nEach run, with peak RSS:\n\n"
            f"{markdown_table(api.rows, share_header='share of the plain client')}\n")


def csv_section(env: dict[str, str]) -> str:
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
    return f"CSV, {CSV_ROWS:,}-row file (share of COPY's rows/s):\n\n{markdown_table(csv_rows)}\n"


if __name__ == "__main__":
    main()
