"""Batch files for singer-sdk's BATCH messages: parquet or JSON Lines, written page by page.

A file closes when it holds `batch_size` rows or `batch_file_max_bytes` bytes, whichever
comes first, so that a table of large texts keeps memory flat (the writer holds one page at a
time; a parquet file gets one row group per page). Names are unique per run; a file that is
still open when the stream fails is deleted (closed files were announced and are the loader's).
Only local folders (`file://` roots) are supported: the project's loader reads local files.
"""

from __future__ import annotations

import gzip
import pathlib
import typing as t
import uuid
from urllib.parse import urlparse
from urllib.request import url2pathname

import msgspec

from tap_wiserock_api.errors import SourceDataError
from tap_wiserock_api.kinds import BOOLEAN, INTEGER, JSON_KINDS, NUMBER
from tap_wiserock_api.normalize import json_text, records_of

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from singer_sdk.helpers._batch import BatchConfig

Columns = dict[str, list[t.Any]]
# Batch files live minutes: level 1 gives most of gzip's size gain at a fraction of its time
# (a page of notes as parquet: level 1 7.6 ms, level 6 31 ms, pyarrow's default 79 ms).
GZIP_LEVEL = 1


class BatchConfigError(ValueError):
    """`batch_config` asks for something these batch files cannot do."""


def local_folder(root: str) -> pathlib.Path:
    """The folder a `file://` storage root names; relative roots are read from the working
    directory, as singer-sdk reads them (`file://output` is ./output)."""
    parsed = urlparse(root)
    if parsed.scheme not in {"file", ""}:
        raise BatchConfigError(f"batch_config storage.root must be a local file:// folder, got {root!r}")
    return pathlib.Path(url2pathname(parsed.netloc + parsed.path)).resolve()


def arrow_type(kind: str) -> pa.DataType:
    """The parquet column type of a column kind: integers int64, booleans bool, everything else
    text the loader's COPY reads (numbers as exact decimal text, dates and date-times as the API
    wrote them, JSON values as JSON text)."""
    import pyarrow as pa  # only BATCH mode needs pyarrow: discovery starts faster without it

    return {INTEGER: pa.int64(), BOOLEAN: pa.bool_()}.get(kind, pa.string())


def arrow_values(kind: str, values: list[t.Any]) -> list[t.Any]:
    """A converted column as the values of its parquet column."""
    if kind == NUMBER:
        return [None if value is None else str(value) for value in values]
    if kind in JSON_KINDS:
        return [None if value is None else json_text(value) for value in values]
    return values


class BatchFiles:
    """The batch files of one stream in one run."""

    def __init__(self, config: BatchConfig, *, max_bytes: int, tap: str, stream: str, kinds: dict[str, str]) -> None:
        # singer-sdk's settings schema allows only parquet or jsonl, gzip or none.
        encoding = config.encoding
        self.compression = encoding.compression or "none"
        self.format = encoding.format
        # A parquet file compresses inside (its codec); a JSON Lines file is gzipped whole.
        self._suffix = ".parquet" if self.format == "parquet" else ".jsonl.gz" if self.compression == "gzip" else ".jsonl"
        self._stream = stream
        self._folder = local_folder(config.storage.root)
        self._stem = f"{config.storage.prefix or ''}{tap}--{stream}-{uuid.uuid4()}"
        self._max_rows = config.batch_size
        self._max_bytes = max_bytes
        self.kinds = kinds
        self._count = 0
        self._rows = 0
        self._file: _OpenFile | None = None

    def add(self, columns: Columns, rows: int) -> Iterator[str]:
        """Write a page's converted columns; yield the URL of each file this closes."""
        offset = 0
        while offset < rows:
            if self._file is None:
                self._count += 1
                path = self._folder / f"{self._stem}-{self._count:05d}{self._suffix}"
                self._folder.mkdir(parents=True, exist_ok=True)
                self._file = (_ParquetFile(path, self.kinds, self.compression, self._stream)
                              if self.format == "parquet"
                              else _JsonLinesFile(path, self.compression))
            take = min(rows - offset, self._max_rows - self._rows)
            # Python lists and Arrow arrays both slice this way (Arrow's without copying).
            self._file.write({name: values[offset:offset + take] for name, values in columns.items()} if take < rows
                             else columns)
            offset += take
            self._rows += take
            if self._rows >= self._max_rows or self._file.size() >= self._max_bytes:
                yield self._close()

    def finish(self) -> Iterator[str]:
        """Close the last file, if one is open."""
        if self._file is not None:
            yield self._close()

    def discard(self) -> None:
        """Delete the file still open (the stream failed): nobody was told of it."""
        if self._file is not None:
            self._file.close()
            self._file.path.unlink(missing_ok=True)
            self._file = None

    def _close(self) -> str:
        assert self._file is not None  # noqa: S101 - called only with a file open
        self._file.close()
        url = self._file.path.as_uri()
        self._file, self._rows = None, 0
        return url


class _OpenFile(t.Protocol):
    path: pathlib.Path

    def write(self, columns: Columns) -> None: ...
    def size(self) -> int: ...
    def close(self) -> None: ...


class _ParquetFile:
    def __init__(self, path: pathlib.Path, kinds: dict[str, str], compression: str, stream: str) -> None:
        import pyarrow as pa  # see arrow_type
        import pyarrow.parquet as pq

        self.path = path
        self._pa = pa
        self._stream = stream
        self._kinds = kinds
        self._schema = pa.schema([(name, arrow_type(kind)) for name, kind in kinds.items()])
        self._sink = pa.OSFile(str(path), "wb")
        # No dictionaries or statistics: a batch file is read once, in full (writing a page of
        # notes takes a quarter of the time without them).
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression=compression, use_dictionary=False,
                                        write_statistics=False,
                                        compression_level=GZIP_LEVEL if compression == "gzip" else None)

    def write(self, columns: Columns) -> None:
        pa = self._pa
        arrays = []
        for field in self._schema:
            values = arrow_values(self._kinds[field.name], columns[field.name])
            try:
                arrays.append(pa.array(values, field.type))
            except (pa.ArrowException, OverflowError) as exc:  # e.g. an integer beyond 64 bits
                raise SourceDataError(f"table '{self._stream}', column {field.name}: cannot be stored as "
                                      f"{field.type}: {str(exc)[:200]}") from None
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._schema))

    def size(self) -> int:
        return self._sink.tell()

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


class _JsonLinesFile:
    """Raw records, one JSON object per line, as singer-sdk's jsonl batches hold them."""

    _encoder = msgspec.json.Encoder(decimal_format="number")  # numbers as numbers, as in RECORD messages

    def __init__(self, path: pathlib.Path, compression: str) -> None:
        self.path = path
        self._raw = path.open("wb")
        self._out: t.BinaryIO = (gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=GZIP_LEVEL)
                                 if compression == "gzip" else self._raw)

    def write(self, columns: Columns) -> None:
        self._out.write(self._encoder.encode_lines(records_of(columns)))

    def size(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._out.close()
        self._raw.close()
