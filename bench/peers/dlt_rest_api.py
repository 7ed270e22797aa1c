"""The dlt peer for the API: dlt's `rest_api` source into PostgreSQL with `replace`, configured as
dlt's documentation shows it for a REST API that pages by offset and takes key headers.

Runs in the bench's own environment (bench/.venv), not the project's: `python dlt_rest_api.py
API_URL API_KEY POSTGRES_URL SCHEMA TABLE...`. PostgREST asks for the key twice, as the `apikey`
header and as the bearer token; a service-role key reads every row without a login (dlt's
rest_api has no Supabase password grant). Paging: `offset`/`limit` in pages of 1000 until an
empty page (PostgREST sends no total in the body), ordered by `id` so that pages neither skip nor
repeat rows. Prints nothing on success.
"""

from __future__ import annotations

import sys
import tempfile

import dlt
from dlt.sources.rest_api import rest_api_source

PAGE = 1000


def main() -> None:
    api_url, api_key, url, schema, *tables = sys.argv[1:]
    source = rest_api_source({
        "client": {
            "base_url": f"{api_url}/rest/v1/",
            "headers": {"apikey": api_key},
            "auth": {"type": "bearer", "token": api_key},
            "paginator": {"type": "offset", "limit": PAGE, "offset_param": "offset", "limit_param": "limit",
                          "total_path": None},
        },
        "resource_defaults": {"write_disposition": "replace"},
        "resources": [{"name": table, "endpoint": {"path": table, "params": {"select": "*", "order": "id.asc"}}}
                      for table in tables],
    })
    with tempfile.TemporaryDirectory() as folder:
        pipeline = dlt.pipeline(pipeline_name="bench_dlt_api", pipelines_dir=folder, dataset_name=schema,
                                destination=dlt.destinations.postgres(credentials=url))
        pipeline.run(source)


if __name__ == "__main__":
    main()
