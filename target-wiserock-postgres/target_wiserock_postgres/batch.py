"""BATCH files (singer-sdk's jsonl, jsonl.gz and parquet encodings) loaded with COPY.

Parquet is read one record batch at a time (flat memory), turned into CSV by Arrow's C++
writer (strings quoted, so "" stays an empty string while null is an empty unquoted field)
and fed to COPY ... (FORMAT csv). jsonl files hold raw records, which take the RECORD path.
"""

from __future__ import annotations

import gzip
import typing as t

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from target_wiserock_postgres.errors import LoadError, shorten
from target_wiserock_postgres.reader import NUL, decoder, remove_nul
from target_wiserock_postgres.sinks import json_text
from target_wiserock_postgres.types import Kind

if t.TYPE_CHECKING:
    import pathlib

    from target_wiserock_postgres.sinks import CopyFeeder, StreamLoad

PARQUET_BATCH_ROWS = 16_384
# 0001-01-01 00:00 UTC: Arrow writes earlier instants with a year 0 or a minus sign, which
# PostgreSQL refuses; it wants "0001-12-31 23:00:00 BC" (1 BC is the year before AD 1).
FIRST_AD_DAY = -719_162  # days from 1970-01-01
MICROS_PER_DAY = 86_400_000_000
CSV_OPTIONS = pacsv.WriteOptions(include_header=False)
FORMATS = ("jsonl", "parquet")


def batch_format(stream: str, encoding: t.Any) -> tuple[str, bool]:
    """(format, gzip) of a BATCH message's encoding."""
    kind = encoding.get("format") if isinstance(encoding, dict) else None
    compression = (encoding.get("compression") if isinstance(encoding, dict) else None) or "none"
    if kind not in FORMATS or compression not in ("none", "gzip"):
        raise LoadError(f"stream {stream!r}: BATCH encoding {shorten(encoding)} is not supported "
                        "(format jsonl or parquet, compression none or gzip)")
    return kind, compression == "gzip"


def load_file(load: StreamLoad, feeder: CopyFeeder, path: pathlib.Path, encoding: t.Any) -> None:
    """One batch file into the stream's loading table; unreadable files become one line naming them."""
    kind, compressed = batch_format(load.stream, encoding)
    try:
        if kind == "parquet":
            load_parquet(load, feeder, path)
        else:
            load_jsonl(load, feeder, path, compressed=compressed)
    except FileNotFoundError:
        raise LoadError(f"table {load.table}: batch file {path} does not exist") from None
    except (pa.ArrowException, OSError, EOFError, msgspec.DecodeError) as exc:
        raise LoadError(f"table {load.table}: batch file {path} cannot be read as {kind}: {shorten(exc, 200)}") from None


def load_jsonl(load: StreamLoad, feeder: CopyFeeder, path: pathlib.Path, *, compressed: bool) -> None:
    """Raw records, one JSON object a line, through the stream's RECORD path."""
    feeder.flush(load)
    feeder.make_live(load, source=f"batch file {path}")
    opener = gzip.open if compressed else open
    with opener(path, "rb") as lines:
        for line in lines:
            if line.isspace():
                continue
            record = decoder.decode(line)
            if b"\\u0000" in line:
                record, count = remove_nul(record)
                load.nul_removed += count
            load.write(record)
    feeder.end()


def _json_column(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Nested Arrow values (lists, structs, maps) as JSON text for a jsonb column."""
    return pa.array([None if value is None else json_text(remove_nul(value)[0]) for value in column.to_pylist()],
                    pa.string())


def _civil(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of a day number, for any year (H. Hinnant's algorithm)."""
    days += 719_468
    era = days // 146_097
    day_of_era = days - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = month_index + 3 if month_index < 10 else month_index - 9
    return year_of_era + era * 400 + (month <= 2), month, day


def _postgres_text(days: int, micros: int | None) -> str:
    """A date (micros None) or a UTC timestamp as PostgreSQL reads it, BC years included."""
    year, month, day = _civil(days)
    era = " BC" if year <= 0 else ""
    text = f"{1 - year if era else year:04d}-{month:02d}-{day:02d}"
    if micros is not None:
        seconds, fraction = divmod(micros, 1_000_000)
        text += f" {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}"
    return text + era


def _before_ad(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Dates and naive (UTC) timestamps as text PostgreSQL accepts when any is before AD 1; rare, so per value."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        micros = column.cast(pa.timestamp("us")).cast(pa.int64())
        earliest = pc.min(micros).as_py()
        if earliest is None or earliest >= FIRST_AD_DAY * MICROS_PER_DAY:
            return column
        return pa.array([None if value is None else _postgres_text(*divmod(value, MICROS_PER_DAY))
                         for value in micros.to_pylist()], pa.string())
    days = column.cast(pa.date32()).cast(pa.int32())
    earliest = pc.min(days).as_py()
    if earliest is None or earliest >= FIRST_AD_DAY:
        return column
    return pa.array([None if value is None else _postgres_text(value, None) for value in days.to_pylist()], pa.string())


def _prepared(load: StreamLoad, batch: pa.RecordBatch, names: t.Sequence[str]) -> pa.RecordBatch:
    """A record batch Arrow's CSV writer can write and PostgreSQL can parse; NULs removed and
    counted. `names`: the table's columns of the batch's columns."""
    arrays = []
    for name, column in zip(names, batch.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.dictionary_decode()
            kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            # The same UTC instants without the zone, which the session reads as UTC: Arrow
            # formats zoned timestamps 15x slower (2.3 s per million values, most of the CSV time).
            column = _before_ad(column.cast(pa.timestamp(kind.unit)))
        elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
            column = _before_ad(column)
        elif pa.types.is_nested(kind):
            if load.columns[name].kind is not Kind.JSON:
                raise LoadError(f"table {load.table}, column {name}: the batch file holds nested values ({kind}) "
                                f"for a {load.columns[name].sql} column")
            column = _json_column(column)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            found = pc.sum(pc.count_substring(column, NUL)).as_py()
            if found:
                load.nul_removed += found
                column = pc.replace_substring(column, NUL, "")
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def load_parquet(load: StreamLoad, feeder: CopyFeeder, path: pathlib.Path) -> None:
    # glibc's allocator gives freed batches back; Arrow's default (mimalloc) kept ~100 MB more
    # resident over a million rows. Process-wide, set when the first parquet file is read.
    pa.set_memory_pool(pa.system_memory_pool())
    parquet = pq.ParquetFile(path)
    properties = parquet.schema_arrow.names
    unknown = [name for name in properties if name not in load.column_of]
    if unknown:
        raise LoadError(f"table {load.table}: batch file {path} has columns the stream's SCHEMA lacks: "
                        f"{', '.join(shorten(name) for name in unknown)}")
    names = [load.column_of[name] for name in properties]
    copy = feeder.start(load, names, csv=True, source=f"batch file {path}")
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(_prepared(load, batch, names), sink, CSV_OPTIONS)
        copy.write(sink.getvalue())
        load.rows += batch.num_rows
        load.progress()
    feeder.end()
