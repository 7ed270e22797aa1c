"""BATCH files (singer-sdk's jsonl, jsonl.gz and parquet encodings) loaded with COPY.

Parquet is read one record batch at a time (flat memory), turned into CSV by Arrow's C++
writer (strings quoted, so "" stays an empty string while null is an empty unquoted field)
and fed to COPY ... (FORMAT csv). jsonl files hold raw records, which take the RECORD path.
"""

from __future__ import annotations

import gzip
import pathlib
import typing as t
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from target_wiserock_postgres.connector import CopyTarget
from target_wiserock_postgres.errors import LoadError, shorten
from target_wiserock_postgres.reader import NUL, decoder, remove_nul
from target_wiserock_postgres.sinks import json_text
from target_wiserock_postgres.types import Kind

if t.TYPE_CHECKING:
    from target_wiserock_postgres.sinks import CopyFeeder, StreamLoad

PARQUET_BATCH_ROWS = 16_384
CSV_OPTIONS = pacsv.WriteOptions(include_header=False)
FORMATS = ("jsonl", "parquet")


def file_path(stream: str, url: t.Any) -> pathlib.Path:
    """The local file a BATCH manifest entry names: only file:// URLs."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise LoadError(f"stream {stream!r}: batch file {shorten(url)} is not a local file:// URL")
    return pathlib.Path(url2pathname(unquote(parts.path)))


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


def _prepared(load: StreamLoad, batch: pa.RecordBatch) -> pa.RecordBatch:
    """A record batch Arrow's CSV writer can write and PostgreSQL can parse; NULs removed and counted."""
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.dictionary_decode()
            kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            # The same UTC instants without the zone, which the session reads as UTC: Arrow
            # formats zoned timestamps 15x slower (2.3 s per million values, most of the CSV time).
            column = column.cast(pa.timestamp(kind.unit))
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
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def load_parquet(load: StreamLoad, feeder: CopyFeeder, path: pathlib.Path) -> None:
    # glibc's allocator gives freed batches back; Arrow's default (mimalloc) kept ~100 MB more
    # resident over a million rows. Process-wide, set when the first parquet file is read.
    pa.set_memory_pool(pa.system_memory_pool())
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    unknown = [name for name in names if name not in load.columns]
    if unknown:
        raise LoadError(f"table {load.table}: batch file {path} has columns the stream's SCHEMA lacks: "
                        f"{', '.join(shorten(name) for name in unknown)}")
    copy = feeder.start(load, load.copy_statement(names, csv=True), CopyTarget(load.table, source=f"batch file {path}"))
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(_prepared(load, batch), sink, CSV_OPTIONS)
        copy.write(sink.getvalue())
        load.rows += batch.num_rows
        load.progress()
    feeder.end()
