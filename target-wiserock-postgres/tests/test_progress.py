"""Contract 7: a progress line per table at most every 10 s while loading; at the commit one
line per table (rows, seconds) and the total."""

from __future__ import annotations

import logging
import re

import pyarrow as pa
import pyarrow.parquet as pq

from target_wiserock_postgres import sinks
from tests.conftest import activate, load, schema, snapshot


def test_progress_lines_are_rate_limited(warehouse, caplog, monkeypatch):
    monkeypatch.setattr(sinks, "PROGRESS_EVERY_ROWS", 100)
    caplog.set_level(logging.INFO)
    load(warehouse, snapshot("t", [{"id": n} for n in range(1000)], id="integer"))
    assert "rows so far" not in caplog.text  # a fast load stays under 10 s: no progress line

    caplog.clear()
    monkeypatch.setattr(sinks, "PROGRESS_SECONDS", 0.0)
    load(warehouse, snapshot("t", [{"id": n} for n in range(1000)], id="integer"))
    progress = re.findall(r"t: ([\d,]+) rows so far, [\d,]+ rows/s", caplog.text)
    assert progress == [f"{n:,}" for n in range(100, 1001, 100)]


def test_batch_files_report_progress_too(warehouse, caplog, monkeypatch):
    monkeypatch.setattr(sinks, "PROGRESS_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    path = warehouse.folder / "part.parquet"
    pq.write_table(pa.table({"id": list(range(500))}), path)
    load(warehouse, [schema("t", id="integer"), {"type": "BATCH", "stream": "t", "manifest": [path.as_uri()],
                     "encoding": {"format": "parquet", "compression": "none"}}, activate("t")])
    assert "t: 500 rows so far" in caplog.text


def test_the_commit_reports_each_table_and_the_total(warehouse, caplog):
    caplog.set_level(logging.INFO)
    load(warehouse, snapshot("a", [{"id": 1}, {"id": 2}], id="integer"))
    caplog.clear()
    load(warehouse, [*snapshot("a", [{"id": 2}, {"id": 3}, {"id": 4}], id="integer"),
                     *snapshot("b", [{"id": 1}], id="integer")])
    assert re.search(r"\ba: 3 rows in \d+\.\d s \(2 inserted, 1 deleted\)", caplog.text)
    assert re.search(r"\bb: 1 row in \d+\.\d s \(new table\)", caplog.text)
    assert re.search(rf"Committed 2 tables, 4 rows in \d+\.\d s, into schema {warehouse.schema}", caplog.text)
