"""The dlt peer: pyarrow's CSV reader into PostgreSQL with `replace`, as dlt's docs show it.

Runs in the bench's own environment (bench/.venv), not the project's: `python dlt_load.py
CSV_FILE POSTGRES_URL SCHEMA TABLE`. Prints nothing on success.
"""

from __future__ import annotations

import sys
import tempfile

import dlt
import pyarrow.csv as pv


def main() -> None:
    csv_file, url, schema, table = sys.argv[1:5]

    @dlt.resource(name=table, write_disposition="replace")
    def rows():  # noqa: ANN202 - a dlt resource
        with pv.open_csv(csv_file, read_options=pv.ReadOptions(block_size=16 << 20)) as reader:
            yield from reader

    with tempfile.TemporaryDirectory() as folder:
        pipeline = dlt.pipeline(pipeline_name="bench_dlt", pipelines_dir=folder, dataset_name=schema,
                                destination=dlt.destinations.postgres(credentials=url))
        pipeline.run(rows(), loader_file_format="csv")


if __name__ == "__main__":
    main()
