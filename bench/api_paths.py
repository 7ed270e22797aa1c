"""The API side of `make bench` (or `python -m bench api` alone): on the sandbox's note table keyed
by bigint and by uuid, at 0 and 100 ms per request, a plain keyset client (the baseline) against
`meltano run tap-wiserock-api target-postgres` with the service key and with the anon key and a
login, and against dlt's rest_api source (the peer)."""

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

import requests
from psycopg import sql

from bench import peers
from bench.csv_paths import PROJECT_LOADER, SCHEMA, STOCK_LOADER, connect, meltano_run, reset_schema, rss_cell, settle
from bench.measure import Row, run_measured
from elt.settings import PROJECT_DIR, Database
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_SERVICE_KEY

TAP = "tap-wiserock-api"
USERS = 1000
TABLES = ("user", "note")
NOTE_KEYS = ("bigint", "uuid")
LATENCIES_MS = (0, 100)
OTHER_PARALLEL = (4, 16)  # beside the default 8: less, and the most the README advises
COLUMNS = ("plain client", "service key", "anon key + login", "dlt rest_api")
DLT_SCRIPT = pathlib.Path(peers.__file__).with_name("dlt_rest_api.py")


@contextlib.contextmanager
def sandbox(notes: int, latency_ms: int = 0, note_key: str = "bigint") -> t.Iterator[str]:
    """The sandbox in its own process (its CPU is not the client's), serving USERS users and `notes` notes."""
    with tempfile.TemporaryDirectory() as folder:
        url_file = pathlib.Path(folder) / "url"
        process = subprocess.Popen([sys.executable, "-m", "wiserock_sandbox.cli", "--users", str(USERS),
                                    "--notes", str(notes), "--note-key", note_key, "--latency-ms", str(latency_ms),
                                    "--url-file", str(url_file)], stdout=subprocess.DEVNULL)
        try:
            while not url_file.exists():
                if process.poll() is not None:
                    raise SystemExit("bench: the sandbox did not start")
                time.sleep(0.1)
            yield url_file.read_text()
        finally:
            process.terminate()
            process.wait()


def plain_client(url: str) -> tuple[int, float]:
    """The baseline: log in, then keyset pages of 1000 over both tables, one after another, no processing."""
    http = requests.Session()
    started = time.perf_counter()
    token = http.post(f"{url}/auth/v1/token", params={"grant_type": "password"}, headers={"apikey": SANDBOX_API_KEY},
                      json={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD}, timeout=60).json()["access_token"]
    headers = {"apikey": SANDBOX_API_KEY, "Authorization": f"Bearer {token}"}
    rows = 0
    for table in TABLES:
        last = None
        while True:
            params = {"select": "*", "order": "id.asc", "limit": 1000, **({"id": f"gt.{last}"} if last else {})}
            answer = http.get(f"{url}/rest/v1/{table}", params=params, headers=headers, timeout=60)
            answer.raise_for_status()
            page = answer.json()
            if not page:
                break
            rows += len(page)
            last = page[-1]["id"]
    return rows, time.perf_counter() - started


def api_env(env: dict[str, str], url: str, *, service_key: bool = False) -> dict[str, str]:
    """The tap's settings (meltano.yml maps them from these variables). With the service key, email
    and password are empty: the tap does not log in and reads as the key's role, every row, and
    types the columns from the API's OpenAPI description; the anon key logs in as the sample's
    user, and (the description being refused to it) types the columns from the values."""
    if service_key:
        return {**env, "API_URL": url, "API_KEY": SANDBOX_SERVICE_KEY, "API_EMAIL": "", "API_PASSWORD": ""}
    return {**env, "API_URL": url, "API_KEY": SANDBOX_API_KEY, "API_EMAIL": SANDBOX_EMAIL, "API_PASSWORD": SANDBOX_PASSWORD}


def loaded_rows(env: dict[str, str], tables: t.Iterable[str]) -> int:
    """Rows in these tables of the bench's schema: every path is checked to have loaded them all."""
    with connect(env) as connection:
        return sum(connection.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(SCHEMA, table))).fetchone()[0]
                   for table in tables)


def _check(env: dict[str, str], path: str, tables: t.Iterable[str], expected: int) -> None:
    found = loaded_rows(env, tables)
    if found != expected:
        raise SystemExit(f"bench: {path} loaded {found:,} rows, not {expected:,}")


def tap_row(env: dict[str, str], url: str, label: str, count: int, baseline: float, *, service_key: bool,
            loader: str = PROJECT_LOADER, parallel: int | None = None) -> Row:
    """`parallel`: the tap's parallel_requests, when not the project's."""
    reset_schema(env)
    environment = "standard-targets" if loader == STOCK_LOADER else "dev"
    run_env = api_env(env, url, service_key=service_key)
    if parallel is not None:
        run_env["TAP_WISEROCK_API_PARALLEL_REQUESTS"] = str(parallel)
    seconds, peaks = meltano_run(run_env, TAP, loader, environment=environment)
    _check(env, label, [f"stg_wiserock_{table}" for table in TABLES], count)
    return Row(label, count, seconds, baseline, rss_cell(peaks, TAP, loader))


def dlt_row(env: dict[str, str], url: str, label: str, count: int, baseline: float) -> Row | None:
    """dlt's rest_api source with the service key (see peers/dlt_rest_api.py); None without bench/.venv."""
    target = peers.tcp_url(Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params)
    if target is None or not peers.BENCH_PYTHON.exists():
        return None
    reset_schema(env)
    settle(env)
    command = [str(peers.BENCH_PYTHON), str(DLT_SCRIPT), url, SANDBOX_SERVICE_KEY, target, SCHEMA, *TABLES]
    measured = run_measured(command, labels=["dlt_rest_api"], env=dict(os.environ), cwd=str(PROJECT_DIR),
                            include_root=True)
    if measured.returncode != 0:
        raise SystemExit(f"bench: the dlt rest_api peer failed:\n{measured.output[-3000:]}")
    _check(env, label, TABLES, count)
    return Row(label, count, measured.seconds, baseline, f"{measured.peak_rss_mb['dlt_rest_api']:.0f}")


@dataclasses.dataclass
class ApiResults:
    """Every measured run (for the detailed table) and the grid's cells by (note key, latency)."""

    rows: list[Row] = dataclasses.field(default_factory=list)
    grid: dict[tuple[str, int], dict[str, Row]] = dataclasses.field(default_factory=dict)


def api_results(env: dict[str, str], notes: int, *, stock: bool = True, small: int = 0) -> ApiResults:
    """Each note key at each latency: the plain client, the tap with the service key and with the
    anon key and a login, and dlt. With `stock`, the stock loader at (bigint, 0 ms); with `small`,
    the service-key tap also at that many notes, to show how memory grows."""
    results = ApiResults()
    if peers.tcp_url(Database.from_env({**env, "DB_SCHEMA": SCHEMA}).params) is None or not peers.BENCH_PYTHON.exists():
        print("bench: the dlt rest_api peer left out (it needs a TCP server and bench/.venv; `make bench` builds it)",
              file=sys.stderr)
    for latency in LATENCIES_MS:
        for key in NOTE_KEYS:
            where = f"{key} note keys, {latency} ms per request"
            cells: dict[str, Row] = {}
            with sandbox(notes, latency, key) as url:
                count, seconds = plain_client(url)
                cells[COLUMNS[0]] = Row(f"plain HTTP client, keyset pages of 1000 (baseline; {where})", count, seconds)
                baseline = cells[COLUMNS[0]].rate
                cells[COLUMNS[1]] = tap_row(env, url, f"meltano run {TAP} target-postgres, service key ({where})",
                                            count, baseline, service_key=True)
                cells[COLUMNS[2]] = tap_row(env, url, f"meltano run {TAP} target-postgres, anon key + login ({where})",
                                            count, baseline, service_key=False)
                peer = dlt_row(env, url, f"dlt 1.31 rest_api source, offset pages of 1000, service key (peer; {where})",
                               count, baseline)
                if peer is not None:
                    cells[COLUMNS[3]] = peer
                results.rows += cells.values()
                if latency:  # what the setting buys at a remote project's latency, and the tap's memory at 16
                    results.rows += [tap_row(env, url, f"meltano run {TAP} target-postgres, service key, "
                                             f"parallel_requests {parallel} ({where})", count, baseline,
                                             service_key=True, parallel=parallel) for parallel in OTHER_PARALLEL]
                if stock and (key, latency) == (NOTE_KEYS[0], 0):
                    results.rows.append(tap_row(
                        env, url, f"meltano run {TAP} target-postgres-meltanolabs (stock loader), anon key + login "
                        f"({where})", count, baseline, service_key=False, loader=STOCK_LOADER))
            results.grid[(key, latency)] = cells
    if small:
        with sandbox(small) as url:
            count, seconds = plain_client(url)
            baseline = Row("plain", count, seconds).rate
            results.rows.append(tap_row(env, url, f"meltano run {TAP} target-postgres, service key ({small:,} notes, "
                                        "for memory growth)", count, baseline, service_key=True))
    reset_schema(env)
    return results


def grid_table(results: ApiResults) -> str:
    """Columns: the plain client, the tap with each key, dlt; rows: (note key, latency). A cell:
    seconds, rows/s, and the share of the plain client's rows/s in that row."""
    header = ["notes keyed by, latency", *COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for latency in LATENCIES_MS:
        for key in NOTE_KEYS:
            cells = results.grid.get((key, latency))
            if cells is None:
                continue
            shown = []
            for column in COLUMNS:
                row = cells.get(column)
                share = f"{row.rate / row.ceiling:.2f}x" if row and row.ceiling else "1.00x"
                shown.append(f"{row.seconds:.1f} s, {row.rate:,.0f} rows/s, {share}" if row else "-")
            lines.append(f"| {key}, {latency} ms | " + " | ".join(shown) + " |")
    return "\n".join(lines)
