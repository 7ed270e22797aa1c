"""Running tap-wiserock-csv as users run it, on folders of CSV files made per test."""

from __future__ import annotations

import dataclasses
import decimal
import json
import os
import pathlib
import subprocess
import sys
import typing as t

import pytest

REPO_DATA = pathlib.Path(__file__).resolve().parents[2] / "data"


@dataclasses.dataclass
class TapRun:
    returncode: int
    messages: list[dict[str, t.Any]]
    stderr: str

    def records(self, stream: str) -> list[dict[str, t.Any]]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    def schema(self, stream: str) -> dict[str, t.Any]:
        return next(m for m in self.messages if m["type"] == "SCHEMA" and m["stream"] == stream)

    def properties(self, stream: str) -> dict[str, t.Any]:
        return self.schema(stream)["schema"]["properties"]

    @property
    def streams(self) -> list[str]:
        return [m["stream"] for m in self.messages if m["type"] == "SCHEMA"]

    @property
    def last_error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


@pytest.fixture
def folder(tmp_path: pathlib.Path) -> pathlib.Path:
    data = tmp_path / "data"
    data.mkdir()
    return data


def write(folder: pathlib.Path, name: str, text: str | bytes, encoding: str = "utf-8") -> pathlib.Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def run_tap(folder: pathlib.Path, *args: str, **config: t.Any) -> TapRun:
    """The tap as a user runs it; numbers are read as exact decimals. Plans are cached beside the folder."""
    config_file = folder.parent / "config.json"
    config_file.write_text(json.dumps({"data_dir": str(folder), "cache_dir": str(folder.parent / "cache"), **config}))
    process = subprocess.run([sys.executable, "-m", "tap_wiserock_csv.tap", "--config", str(config_file), *args],
                             capture_output=True, text=True, timeout=600, cwd=folder.parent,
                             env=dict(os.environ), check=False)
    messages = [json.loads(line, parse_float=decimal.Decimal) for line in process.stdout.splitlines()
                if line.startswith('{"type"')]  # (the tap writes integers over 4300 digits with an exponent)
    return TapRun(process.returncode, messages, process.stderr)
