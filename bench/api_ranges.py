"""The tap alone against a plain sequential keyset client, on one large table at a remote
project's latency: a bigint key and a uuid key, with the service-role key (types from the
description) and with the anon key and a login (types from the rows).

    flock /tmp/wiserock-bench.lock .venv/bin/python -m bench.api_ranges --rows 300000 --latency-ms 100

Each table is served by its own sandbox process (its CPU is not the client's). The sandbox
filters non-integer keys by a linear scan, which at 300,000 rows costs it more than the 100 ms
of latency per request; until it bisects uuid keys itself, the served process gives the uuid
table the sorted key list the sandbox keeps for integer keys (same bisect, same answers), so
that the numbers are the tap's and not the sandbox's scan.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import random
import subprocess
import sys
import tempfile
import time
import typing as t
import uuid

import requests

from bench.measure import Row, markdown_table, run_measured
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_SERVICE_KEY

KEYS = {"bigint": "bigint", "uuid": "uuid"}


def table_rows(key: str, count: int) -> list[dict[str, t.Any]]:
    rng = random.Random(3)
    ids = ([n * 3 + rng.randrange(3) for n in range(1, count + 1)] if key == "bigint"
           else [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)])
    return [{"id": ident, "title": f"note {n} " + "x" * rng.randrange(40), "amount": rng.randrange(10**6),
             "created_at": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00+00:00"}
            for n, ident in enumerate(ids)]


def serve(key: str, count: int, latency_ms: float, url_file: pathlib.Path) -> None:
    """The sandbox process: table `big` keyed by `key`, until terminated."""
    import signal

    from wiserock_sandbox import Column, Faults, Sandbox, SandboxHTTPServer, TableDef
    from wiserock_sandbox.schema import sort_key

    columns = (Column("id", KEYS[key], nullable=False, primary_key=True), Column("title", "text"),
               Column("amount", "bigint"), Column("created_at", "timestamp with time zone"))
    definition = TableDef("big", columns)
    box = Sandbox(faults=Faults(latency=latency_ms / 1000), tables=[(definition, table_rows(key, count))])
    if key == "uuid":  # see the module's docstring: the integer keys' bisect, on uuid bytes
        box._keys["big"] = [sort_key(columns[0], row["id"]) for row in box._tables["big"]]
    server = SandboxHTTPServer(box)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    url_file.write_text(server.url)
    with contextlib.suppress(SystemExit):
        server.serve_forever()


@contextlib.contextmanager
def sandbox(key: str, count: int, latency_ms: float) -> t.Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        url_file = pathlib.Path(folder) / "url"
        process = subprocess.Popen([sys.executable, "-m", "bench.api_ranges", "--serve", key, "--rows", str(count),
                                    "--latency-ms", str(latency_ms), "--url-file", str(url_file)])
        try:
            while not url_file.exists() or not url_file.read_text():
                if process.poll() is not None:
                    raise SystemExit("bench: the sandbox did not start")
                time.sleep(0.2)
            yield url_file.read_text()
        finally:
            process.terminate()
            process.wait()


def headers_for(url: str, mode: str) -> dict[str, str]:
    if mode == "service":
        return {"apikey": SANDBOX_SERVICE_KEY, "Authorization": f"Bearer {SANDBOX_SERVICE_KEY}"}
    token = requests.post(f"{url}/auth/v1/token", params={"grant_type": "password"}, headers={"apikey": SANDBOX_API_KEY},
                          json={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD}, timeout=60).json()["access_token"]
    return {"apikey": SANDBOX_API_KEY, "Authorization": f"Bearer {token}"}


def plain_client(url: str, mode: str) -> tuple[int, float]:
    """Log in (anon mode), then keyset pages of 1000 one after another, no processing."""
    http = requests.Session()
    started = time.perf_counter()
    headers = headers_for(url, mode)
    rows, last = 0, None
    while True:
        params = {"select": "*", "order": "id.asc", "limit": 1000, **({"id": f"gt.{last}"} if last is not None else {})}
        page = http.get(f"{url}/rest/v1/big", params=params, headers=headers, timeout=60).json()
        if not page:
            return rows, time.perf_counter() - started
        rows += len(page)
        last = page[-1]["id"]


def tap_alone(url: str, mode: str, parallel: int) -> tuple[int, float, float]:
    """`tap-wiserock-api --config ...`, its output counted and dropped: rows, seconds, peak RSS (MB)."""
    config = {"api_url": url, "tables": [{"name": "big"}], "parallel_requests": parallel,
              **({"api_key": SANDBOX_SERVICE_KEY} if mode == "service"
                 else {"api_key": SANDBOX_API_KEY, "email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD})}
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "config.json"
        path.write_text(json.dumps(config))
        tap = pathlib.Path(sys.executable).with_name("tap-wiserock-api")
        script = f'"{tap}" --config "{path}" | grep -c \'"type":"RECORD"\''
        measured = run_measured(["sh", "-c", script], labels=["tap-wiserock-api"], env={"PATH": "/usr/bin:/bin"},
                                cwd=folder)
    if measured.returncode != 0:
        raise SystemExit(f"bench: the tap failed: {measured.output[-2000:]}")
    return int(measured.output.strip().splitlines()[-1]), measured.seconds, measured.peak_rss_mb["tap-wiserock-api"]


def meltano_path(env: dict[str, str], url: str, mode: str, parallel: int) -> tuple[float, dict[str, float]]:
    """`meltano run tap-wiserock-api target-postgres` (the project's loader) of the one table, into
    an emptied bench schema: seconds and peak RSS of the tap and the loader."""
    from bench.csv_paths import PROJECT_LOADER, meltano_run, reset_schema

    login = (("", "") if mode == "service" else (SANDBOX_EMAIL, SANDBOX_PASSWORD))
    run_env = {**env, "API_URL": url, "API_KEY": SANDBOX_SERVICE_KEY if mode == "service" else SANDBOX_API_KEY,
               "API_EMAIL": login[0], "API_PASSWORD": login[1], "TAP_WISEROCK_API_TABLES": json.dumps([{"name": "big"}]),
               "TAP_WISEROCK_API_PARALLEL_REQUESTS": str(parallel)}
    reset_schema(env)
    return meltano_run(run_env, "tap-wiserock-api", PROJECT_LOADER)


def database_env() -> dict[str, str]:
    import os

    from bench.csv_paths import SCHEMA
    from elt.database import scratch_server_env
    from elt.settings import PROJECT_DIR

    embedded = PROJECT_DIR / "bench" / "out" / "embedded"
    embedded.mkdir(parents=True, exist_ok=True)
    return {**os.environ, **scratch_server_env(dict(os.environ), embedded), "DB_SCHEMA": SCHEMA}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.api_ranges", description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--keys", nargs="+", default=list(KEYS), choices=list(KEYS))
    parser.add_argument("--modes", nargs="+", default=["service", "anon"], choices=["service", "anon"])
    parser.add_argument("--parallel", type=int, nargs="+", default=[8])
    parser.add_argument("--meltano", action="store_true",
                        help="also time meltano run tap-wiserock-api target-postgres (the project's loader)")
    parser.add_argument("--serve", choices=list(KEYS), help=argparse.SUPPRESS)
    parser.add_argument("--url-file", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.rows, args.latency_ms, args.url_file)
        return
    rows: list[Row] = []
    env = database_env() if args.meltano else {}
    for key in args.keys:
        with sandbox(key, args.rows, args.latency_ms) as url:
            for mode in args.modes:
                count, seconds = plain_client(url, mode)
                ceiling = Row(f"plain sequential keyset client, {key} key, {mode} key", count, seconds)
                rows.append(ceiling)
                for parallel in args.parallel:
                    count, seconds, rss = tap_alone(url, mode, parallel)
                    rows.append(Row(f"tap alone, {key} key, {mode} key, parallel_requests {parallel}", count, seconds,
                                    ceiling.rate, f"{rss:.0f}"))
                    if args.meltano:
                        seconds, peaks = meltano_path(env, url, mode, parallel)
                        rows.append(Row(f"meltano run tap-wiserock-api target-postgres, {key} key, {mode} key, "
                                        f"parallel_requests {parallel}", count, seconds, ceiling.rate,
                                        f"tap {peaks['tap-wiserock-api']:.0f} / loader "
                                        f"{peaks['target-wiserock-postgres']:.0f}"))
                print(markdown_table(rows, share_header="speed vs plain client"), flush=True)


if __name__ == "__main__":
    main()
