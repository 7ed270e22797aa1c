"""Fixtures: a sandbox per test, and the tap run as users run it (a subprocess)."""

from __future__ import annotations

import dataclasses
import decimal
import json
import os
import pathlib
import subprocess
import sys
import typing as t

from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD
from wiserock_sandbox.testing import start_sandbox  # noqa: F401 - a fixture, found by name

if t.TYPE_CHECKING:
    from wiserock_sandbox import SandboxHTTPServer

# What each source spelling of `activeflag` must become, written out independently of the tap.
# (As dict keys, 1 and 0 are True and False: the JSON numbers map with the booleans.)
EXPECTED_FLAG = {
    True: True, "Y": True, "y": True, "yes": True, "YES": True, "true": True, "TRUE": True, "t": True, "T": True,
    False: False, "N": False, "n": False, "no": False, "No": False, "false": False, "False": False,
    "f": False, "F": False, None: None,
}


@dataclasses.dataclass
class TapRun:
    returncode: int
    messages: list[dict[str, t.Any]]
    stdout: str
    stderr: str

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    def of_type(self, kind: str) -> list[dict[str, t.Any]]:
        return [m for m in self.messages if m["type"] == kind]

    @property
    def last_error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def tap_config(server: SandboxHTTPServer, **overrides: t.Any) -> dict[str, t.Any]:
    return {"api_url": server.url, "api_key": SANDBOX_API_KEY, "email": SANDBOX_EMAIL,
            "password": SANDBOX_PASSWORD, "retry_wait_ms": 10, **overrides}


def run_tap(tmp_path: pathlib.Path, config: dict[str, t.Any] | None, *args: str,
            env: dict[str, str] | None = None, timeout: float = 120) -> TapRun:
    """Run `tap-wiserock-api` in a subprocess, as Meltano or a shell would."""
    command = [sys.executable, "-m", "tap_wiserock_api.tap"]
    if config is not None:
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config))
        command += ["--config", str(config_file)]
    process = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                             cwd=tmp_path, env={**os.environ, **(env or {})}, check=False)
    messages = [json.loads(line, parse_float=decimal.Decimal) for line in process.stdout.splitlines()
                if line.startswith("{\"type\"")]
    return TapRun(process.returncode, messages, process.stdout, process.stderr)


def expected_record(row: dict[str, t.Any]) -> dict[str, t.Any]:
    """A sandbox row as the tap must emit it: flags as booleans, NUL-free text, every other value
    exactly as the API wrote it (timestamps keep their text: the loader reads the instant)."""
    record = {}
    for column, value in row.items():
        if column == "activeflag":
            record[column] = EXPECTED_FLAG[value]
        elif isinstance(value, str):
            record[column] = value.replace("\x00", "")
        else:
            record[column] = value
    return record


def assert_same_rows(emitted: list[dict[str, t.Any]], rows: list[dict[str, t.Any]], key: str = "id") -> None:
    """Same keys, no duplicates, equal values."""
    ids = [record[key] for record in emitted]
    assert len(ids) == len(set(ids)), "duplicate keys emitted"
    assert sorted(ids) == sorted(row[key] for row in rows)
    by_id = {row[key]: expected_record(row) for row in rows}
    for record in emitted:
        assert record == by_id[record[key]]


def batch_config(folder: pathlib.Path, file_format: str = "parquet", compression: str = "none",
                 batch_size: int = 10000) -> dict[str, t.Any]:
    return {"encoding": {"format": file_format, "compression": compression},
            "storage": {"root": folder.as_uri()}, "batch_size": batch_size}


def batch_files(run: TapRun, stream: str) -> list[pathlib.Path]:
    """The files the BATCH messages of a stream name, in message order."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    return [pathlib.Path(url2pathname(urlparse(url).path))
            for message in run.of_type("BATCH") if message["stream"] == stream for url in message["manifest"]]


def read_batch_file(path: pathlib.Path, file_format: str, compression: str) -> list[dict[str, t.Any]]:
    """A batch file's rows, as a loader reads them: parquet timestamps are datetimes."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    import gzip

    data = gzip.decompress(path.read_bytes()) if compression == "gzip" else path.read_bytes()
    return [json.loads(line, parse_float=decimal.Decimal) for line in data.splitlines()]
