"""The peers the project is compared with: dlt and sling, each loading the bench CSV with `replace`.

They run in the bench's own environment (`bench/.venv`, from bench/requirements.txt), as their
users run them: dlt from a Python script, sling as its binary.
"""

from __future__ import annotations

import pathlib
import sysconfig

from elt.settings import PROJECT_DIR

BENCH_VENV = PROJECT_DIR / "bench" / ".venv"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
DLT_SCRIPT = pathlib.Path(__file__).with_name("dlt_load.py")


def tcp_url(params: dict) -> str | None:
    """A postgresql:// URL for the peers; None when the server is only on a unix socket."""
    host = str(params.get("host") or "")
    if not host or host.startswith("/"):
        return None
    password = params.get("password") or "unused"
    return (f"postgresql://{params.get('user', 'postgres')}:{password}@{host}:{params.get('port', 5432)}"
            f"/{params['dbname']}?sslmode=disable")


def dlt_command(csv_path: pathlib.Path, url: str, schema: str, table: str) -> list[str]:
    return [str(BENCH_PYTHON), str(DLT_SCRIPT), str(csv_path), url, schema, table]


def sling_binary() -> pathlib.Path | None:
    """The binary shipped in the sling-linux-amd64 wheel, if this platform has one."""
    version = f"python{sysconfig.get_python_version()}"
    found = sorted(BENCH_VENV.glob(f"lib/{version}/site-packages/sling_linux_amd64/bin/sling-linux-amd64"))
    found = found or sorted(BENCH_VENV.glob("lib/python3*/site-packages/sling_linux_amd64/bin/sling-linux-amd64"))
    return found[0] if found else None


def sling_command(binary: pathlib.Path, csv_path: pathlib.Path, schema: str, table: str) -> list[str]:
    """Needs the connection URL in the environment variable SLING_TARGET (see `sling_env`)."""
    return [str(binary), "run", "--src-stream", f"file://{csv_path}", "--tgt-conn", "SLING_TARGET",
            "--tgt-object", f"{schema}.{table}", "--mode", "full-refresh"]


def sling_env(url: str, home: pathlib.Path) -> dict[str, str]:
    return {"SLING_TARGET": url, "SLING_HOME_DIR": str(home)}
