"""The benchmark's CSV: 9 columns, mixed flag spellings, quotes and commas in text."""

from __future__ import annotations

import csv
import datetime as dt
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathlib

HEADER = ["id", "first_name", "last_name", "email", "activeflag", "created_at", "score", "city", "comment"]
FLAGS = ("Y", "N", "yes", "no", "true", "False", "t", "f")
CITIES = ("Oslo", "Lima", "Pune", "Kyiv", "Bonn", "Nice", "Faro")
TYPED_TABLE = """create table {table} (
    id bigint primary key, first_name text, last_name text, email text, activeflag boolean,
    created_at timestamp, score double precision, city text, comment text)"""


def write_csv(path: pathlib.Path, rows: int, seed: int = 1) -> pathlib.Path:
    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1)  # noqa: DTZ001 - the CSV's times are naive on purpose
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row_id in range(1, rows + 1):
            writer.writerow([
                row_id, f"First{row_id % 997}", f"Last{row_id % 991}", f"user{row_id}@example.com",
                FLAGS[row_id % len(FLAGS)], (start + dt.timedelta(seconds=row_id * 7)).isoformat(),
                round(rng.random() * 1000, 3), CITIES[row_id % len(CITIES)],
                f'said "hello, world" #{row_id}' if row_id % 3 else "plain, with comma",
            ])
    return path
