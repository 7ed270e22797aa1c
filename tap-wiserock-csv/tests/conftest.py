"""Running tap-wiserock-csv as users run it, on folders of CSV files made per test."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import gzip
import json
import os
import pathlib
import re
import subprocess
import sys
import typing as t

import pyarrow as pa
import pyarrow.parquet as pq
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


# -- BATCH mode: the rows read back from the files named in BATCH messages -------------------------

_INSTANT = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()


def batch_config(root: pathlib.Path, fmt: str = "parquet", compression: str = "none", **extra: t.Any) -> dict:
    return {"encoding": {"format": fmt, "compression": compression}, "storage": {"root": root.as_uri()}, **extra}


def instant_micros(text: str) -> int:
    """Microseconds since 1970 of an RFC 3339 date-time, also outside the years 1-9999 in UTC."""
    match = _INSTANT.fullmatch(text)
    assert match, text
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    seconds = ((dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY) * 86400
               + int(hour) * 3600 + int(minute) * 60 + int(second))
    if offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds * 1_000_000 + int((fraction or ".0")[1:].ljust(6, "0")[:6])


def comparable(value: t.Any, schema: dict) -> t.Any:
    """A value of a RECORD (or jsonl) record in the form the parquet reader gives it."""
    if value is None:
        return None
    if schema.get("format") == "date-time":
        return instant_micros(value)
    if "number" in schema["type"]:
        return decimal.Decimal(value)
    return value


def record_rows(run: TapRun, stream: str) -> list[dict[str, t.Any]]:
    properties = run.properties(stream)
    return [{name: comparable(value, properties[name]) for name, value in record.items()}
            for record in run.records(stream)]


def batch_rows(run: TapRun, stream: str) -> list[dict[str, t.Any]]:
    """Rows of the stream's batch files, in order, typed like `record_rows`."""
    properties = run.properties(stream)
    rows: list[dict[str, t.Any]] = []
    for message in run.messages:
        if message["type"] != "BATCH" or message["stream"] != stream:
            continue
        encoding = message["encoding"]
        for url in message["manifest"]:
            path = pathlib.Path(url.removeprefix("file://"))
            if encoding["format"] == "jsonl":
                opener = gzip.open if encoding["compression"] == "gzip" else open
                with opener(path, "rt", encoding="utf-8") as handle:
                    rows += [{name: comparable(value, properties[name]) for name, value in
                              json.loads(line, parse_float=decimal.Decimal).items()} for line in handle]
                continue
            table = pq.read_table(path)
            columns = {}
            for field in table.schema:
                column = table.column(field.name)
                if pa.types.is_timestamp(field.type):
                    assert str(field.type) == "timestamp[us, tz=UTC]"
                    column = column.cast(pa.int64())
                elif pa.types.is_date32(field.type):
                    column = column.cast(pa.string())
                values = column.to_pylist()
                if "number" in properties[field.name]["type"]:
                    assert pa.types.is_string(field.type)  # the exact decimal text
                    values = [None if v is None else decimal.Decimal(v) for v in values]
                columns[field.name] = values
            rows += [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    return rows
