"""The API side of `make bench`: a plain keyset client (the ceiling) against `meltano run`."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
import tempfile
import time
import typing as t

import requests

from bench.csv_paths import PROJECT_LOADER, STOCK_LOADER, meltano_run, reset_schema, rss_cell
from bench.measure import Row
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD

TAP = "tap-wiserock-api"
USERS = 1000


@contextlib.contextmanager
def sandbox(notes: int, latency_ms: int = 0) -> t.Iterator[str]:
    """The sandbox in its own process (its CPU is not the client's), serving USERS users and `notes` notes."""
    with tempfile.TemporaryDirectory() as folder:
        url_file = pathlib.Path(folder) / "url"
        process = subprocess.Popen([sys.executable, "-m", "wiserock_sandbox.cli", "--users", str(USERS),
                                    "--notes", str(notes), "--latency-ms", str(latency_ms), "--url-file", str(url_file)],
                                   stdout=subprocess.DEVNULL)
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


def api_env(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "API_URL": url, "API_KEY": SANDBOX_API_KEY, "API_EMAIL": SANDBOX_EMAIL, "API_PASSWORD": SANDBOX_PASSWORD}


def api_rows(env: dict[str, str], notes: int, *, latency_ms: int = 0, stock: bool = False) -> list[Row]:
    """At one size: the plain client, the project's path, and (with `stock`) the stock loader's."""
    where = f", {latency_ms} ms per request" if latency_ms else ""
    with sandbox(notes, latency_ms) as url:
        count, seconds = api_ceiling(url)
        ceiling = Row(f"plain HTTP client, keyset pages of 1000 (API ceiling{where})", count, seconds)
        result = [ceiling]
        reset_schema(env)
        seconds, peaks = meltano_run(api_env(env, url), TAP, PROJECT_LOADER)
        result.append(Row(f"meltano run {TAP} target-postgres (project loader{where})", count, seconds, ceiling.rate,
                          rss_cell(peaks, TAP, PROJECT_LOADER)))
        if stock:
            reset_schema(env)
            seconds, peaks = meltano_run(api_env(env, url), TAP, STOCK_LOADER, environment="standard-targets")
            result.append(Row(f"meltano run {TAP} target-postgres-meltanolabs (stock loader)", count, seconds,
                              ceiling.rate, rss_cell(peaks, TAP, STOCK_LOADER)))
    return result
