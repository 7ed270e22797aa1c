"""tap-wiserock-csv: every CSV file of a folder as a typed Singer stream."""

from __future__ import annotations

import json
import pathlib
import sys
import typing as t
from functools import cached_property

import platformdirs
import simplejson
from dotenv import find_dotenv, load_dotenv
from singer_sdk import Tap
from singer_sdk import typing as th

from tap_wiserock_csv.cache import PlanCache
from tap_wiserock_csv.catalog import Planner
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.files import check_fields, check_references, entry_references, parents_first
from tap_wiserock_csv.kinds import KINDS
from tap_wiserock_csv.naming import snake_name
from tap_wiserock_csv.plan import FileOptions
from tap_wiserock_csv.references import Wire, sent, with_references
from tap_wiserock_csv.rows import Dialect
from tap_wiserock_csv.streams import CsvFileStream
from tap_wiserock_csv.writer import ActivateVersionAtEndWriter

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

# Failures a user can act on: reported in one line, without a traceback. OSError: a file
# that cannot be read (missing, no permission) or written (batch folder), a closed pipe.
EXPECTED_FAILURES = (CsvInputError, OSError, UnicodeError, LookupError)
# singer-sdk reads config files with simplejson.
CONFIG_SYNTAX_ERRORS = (json.JSONDecodeError, simplejson.JSONDecodeError)
NULL_VALUES_DESCRIPTION = ("Values read as null, in any case, quoted or not (e.g. NULL, NA, N/A, -); "
                           "an empty unquoted field is always null, a quoted empty field is an empty string")
DUPLICATE_HEADERS = ["rename", "fail"]
DUPLICATE_HEADERS_DESCRIPTION = ("Headers that normalize to a name already taken (ID and id): rename: the later "
                                 "ones get _2, _3, ...; fail: stop with an error naming both headers")
SAMPLE_BYTES_DESCRIPTION = ("A file larger than this is typed by discovery from a sample of about this many bytes (its "
                            "start, its end and spans between) and its rows are sent at once; a later value that "
                            "does not fit widens its column during the sync, exactly (or the stream is sent again). "
                            "Smaller files, and every file with 0 or without emit_activate_version_messages, are "
                            "typed from every value before their first row is sent")
SKIP_LINES_DESCRIPTION = ("Physical lines to pass over before the header (title lines of a report), blank ones "
                          "included; line numbers in messages stay the file's own")


class TapWiseRockCsv(Tap):
    """Reads each `*.csv` file of `data_dir` as one stream."""

    name = "tap-wiserock-csv"
    message_writer_class = ActivateVersionAtEndWriter

    config_jsonschema = th.PropertiesList(
        th.Property("data_dir", th.StringType, default="data", title="Data folder",
                    description="Folder holding the CSV files, relative to the working directory"),
        th.Property("delimiter", th.StringType, default=",", title="Delimiter",
                    description="Field separator, one character"),
        th.Property("quotechar", th.StringType, default='"', title="Quote character",
                    description="Character that quotes fields holding delimiters, quotes or newlines"),
        th.Property("encoding", th.StringType, default="utf-8", title="Encoding",
                    description="Text encoding of the files; a UTF-8 byte-order mark is always accepted"),
        th.Property("null_values", th.ArrayType(th.StringType), default=["NULL"], title="Null values",
                    description=NULL_VALUES_DESCRIPTION),
        th.Property("duplicate_headers", th.StringType(allowed_values=DUPLICATE_HEADERS), default="rename",
                    title="Duplicate headers", description=DUPLICATE_HEADERS_DESCRIPTION),
        th.Property("skip_lines", th.IntegerType(minimum=0), default=0, title="Lines before the header",
                    description=SKIP_LINES_DESCRIPTION),
        th.Property("on_bad_row", th.StringType(allowed_values=["fail", "skip"]), default="fail",
                    title="On a bad row",
                    description="fail: stop with an error naming file and line; skip: log, count and leave out"),
        th.Property("max_bad_rows", th.NumberType, title="Maximum bad rows",
                    description="With on_bad_row skip, a file fails past this many bad rows: a count (10), or a "
                                "share of its rows when below 1 (0.01 = 1 %); a file whose rows are all bad "
                                "always fails"),
        th.Property("add_metadata_columns", th.BooleanType, default=False, title="Add metadata columns",
                    description="Add _sdc_source_file and _sdc_source_lineno to every record"),
        th.Property("sample_bytes", th.IntegerType(minimum=0), default=32 * 2**20, title="Typing sample bytes",
                    description=SAMPLE_BYTES_DESCRIPTION),
        th.Property("cache_dir", th.StringType, title="Plan cache folder",
                    description="Where each file's typing plan is kept between runs, so that an unchanged file "
                                "is not read twice per run; default: the user's cache folder; empty: no cache"),
        # Same name, default and meaning as in tap-wiserock-api.
        th.Property("batch_file_max_bytes", th.IntegerType(minimum=1), default=64 * 2**20,
                    title="Batch file maximum bytes",
                    description="With batch_config: a batch file is closed once it holds this many bytes, or "
                                "batch_config's batch_size rows, whichever comes first"),
        # singer-sdk reads this setting but does not list it; declared so that --about shows it.
        th.Property("emit_activate_version_messages", th.BooleanType, default=False,
                    title="Emit ACTIVATE_VERSION messages",
                    description="Lets the loader delete rows that are gone from the source "
                                "(sent after a stream's last record)"),
        th.Property(
            "files",
            th.ArrayType(th.ObjectType(
                th.Property("path", th.StringType, required=True,
                            description="File name, relative to data_dir"),
                th.Property("stream", th.StringType, description="Stream name instead of the file's stem"),
                th.Property("keys", th.ArrayType(th.StringType),
                            description="Primary key columns (normalized name or header as written); [] for none"),
                th.Property("column_types", th.ObjectType(additional_properties=th.StringType(allowed_values=list(KINDS))),
                            description="Forced types by column name: " + ", ".join(KINDS)),
                th.Property("delimiter", th.StringType, description="Field separator of this file"),
                th.Property("null_values", th.ArrayType(th.StringType), description="Null values of this file"),
                th.Property("duplicate_headers", th.StringType(allowed_values=DUPLICATE_HEADERS),
                            description="This file's duplicate_headers: rename or fail"),
                th.Property("skip_lines", th.IntegerType(minimum=0),
                            description="This file's skip_lines: physical lines before its header"),
                th.Property("header", th.BooleanType,
                            description="false: the file has no header; every line is data, in columns column_1 "
                                        "... column_n (n: the first line's fields)"),
                th.Property("references", th.ObjectType(additional_properties=th.StringType),
                            description='Columns holding values of another stream\'s column, e.g. {"customer_id": '
                                        '"customers.id"}; that stream is emitted first, and orphans are checked'),
            )),
            title="Per-file overrides",
            description="Per-file settings: path, stream, keys, column_types, delimiter, null_values, "
                        "duplicate_headers, skip_lines, header, and references to other streams "
                        '({"customer_id": "customers.id"}); listed files come first, in this order, each after the '
                        "streams it references; the rest follow by name",
        ),
    ).to_dict()

    @cached_property
    def planner(self) -> Planner:
        setting = self.config.get("cache_dir")
        folder = pathlib.Path(platformdirs.user_cache_dir(self.name)) / "plans" if setting is None else \
            pathlib.Path(setting) if setting else None
        # A file typed from a sample may have to be sent again (streams.py): only a stream with a
        # version (ACTIVATE_VERSION) can be, so that a target tells the two sendings apart.
        versioned = bool(self.config.get("emit_activate_version_messages"))
        return Planner(PlanCache(folder, self.logger), self.logger, self.input_catalog,
                       sample_bytes=int(self.config["sample_bytes"]) if versioned else 0)

    def csv_files(self) -> list[tuple[pathlib.Path, dict]]:
        """The folder's CSV files with their `files` entry: those named there first, in that order, then by name."""
        folder = pathlib.Path(self.config["data_dir"])
        if not folder.is_dir():
            raise CsvInputError(f"data_dir {str(folder)!r} is not a folder (working directory: {pathlib.Path.cwd()})")
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        by_name = {path.name: path for path in found}
        ordered: list[tuple[pathlib.Path, dict]] = []
        for entry in self.config.get("files") or []:
            check_fields(entry)
            if entry["path"] not in by_name:
                raise CsvInputError(f"files entry {entry['path']!r}: no such CSV file in {str(folder)!r}")
            ordered.append((by_name.pop(entry["path"]), entry))
        ordered += [(path, {}) for path in found if path.name in by_name]
        return ordered

    def file_options(self, path: pathlib.Path, entry: dict) -> FileOptions:
        config = self.config
        dialect = Dialect(entry.get("delimiter") or config["delimiter"], config["quotechar"], config["encoding"],
                          skip_lines=_of_file(entry, config, "skip_lines"), header=entry.get("header") is not False)
        dialect.check()
        column_types = entry.get("column_types") or {}
        for column, kind in column_types.items():
            if kind not in KINDS:
                raise CsvInputError(f"files entry {entry['path']!r}: column {column!r} has type {kind!r}; "
                                    f"expected one of {', '.join(KINDS)}")
        keys = entry.get("keys")
        max_bad_rows = config.get("max_bad_rows")
        if max_bad_rows is not None and max_bad_rows < 0:
            raise CsvInputError(f"max_bad_rows must be 0 or more, not {max_bad_rows}")
        return FileOptions(
            path=path, label=str(path), stream=entry.get("stream") or snake_name(path.stem, 1), dialect=dialect,
            null_values=tuple(_of_file(entry, config, "null_values")),
            keys=None if keys is None else tuple(keys), column_types=tuple(sorted(column_types.items())),
            skip_bad_rows=config["on_bad_row"] == "skip", max_bad_rows=max_bad_rows,
            duplicate_headers=_of_file(entry, config, "duplicate_headers"))

    @override
    def discover_streams(self) -> list[CsvFileStream]:
        """The files' streams, with their references checked, parents first."""
        streams: dict[str, CsvFileStream] = {}
        entries: dict[str, dict] = {}
        for path, entry in self.csv_files():
            options = self.file_options(path, entry)
            if options.stream in streams:
                raise CsvInputError(f"{options.label} and {streams[options.stream].options.label} both make stream "
                                    f"{options.stream!r}; name one of them with a files entry")
            found = self.planner.stream_plan(options)
            if found is None:
                self.logger.warning("Skipping %s: the file is empty (not even a header).", options.label)
                continue
            plan, stamp, options = found
            streams[options.stream] = CsvFileStream(self, options, plan, stamp)
            entries[options.stream] = entry
        if not streams:
            self.logger.warning("No CSV files with a header in %s.", self.config["data_dir"])
        columns = {name: stream.plan.columns for name, stream in streams.items()}
        for name, entry in entries.items():
            streams[name].references = entry_references(entry)
            check_references(entry.get("path", ""), name, streams[name].references, columns)
        order = parents_first(list(streams), {name: [reference.parent for reference in stream.references]
                                              for name, stream in streams.items()})
        return [streams[name] for name in order]

    @property
    @override
    def catalog_dict(self) -> dict:
        """The catalog, each stream's references in its root metadata (references.py)."""
        return with_references(super().catalog_dict, {stream.name: stream.references for stream in self.streams.values()
                                                      if isinstance(stream, CsvFileStream)})

    def references_of(self, output_stream: str) -> list[Wire]:
        """The references a SCHEMA message of this output stream (a stream map's alias) carries."""
        for stream in self.streams.values():
            for stream_map in self.mapper.stream_maps.get(stream.name, []):
                if stream_map.stream_alias == output_stream and isinstance(stream, CsvFileStream):
                    return sent(stream.references, stream_map, self.mapper)
        return []

    @override
    def sync_all(self) -> None:
        """SCHEMA messages carry each stream's references."""
        self.message_writer.references_of = self.references_of
        super().sync_all()

    @override
    def setup_mapper(self) -> None:
        """As the SDK's, but a stream deselected in the catalog is registered without its key: the SDK
        registers it with none of its columns, and a stream map (the project's alias) then refuses
        the key ("Invalid key properties"). A deselected stream is never written."""
        for entry in self.catalog.streams:
            if not entry.metadata.resolve_selection().get((), True):
                entry.key_properties = []
        super().setup_mapper()

    @override
    def load_streams(self) -> list[CsvFileStream]:
        """Keep the discovery order, parents first (the SDK's default sorts by name)."""
        return self.discover_streams()


def _of_file(entry: dict, config: t.Mapping[str, t.Any], name: str) -> t.Any:
    """A setting's value for one file: its files entry's when given, else the global one."""
    value = entry.get(name)
    return config[name] if value is None else value


def main() -> None:
    """Console entry point: expected failures end in one line on stderr and exit 1."""
    # For `--config ENV`: singer-sdk looks for .env beside its own package, not in the
    # working directory. Variables already in the environment win over the file.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        TapWiseRockCsv.cli()
    except CONFIG_SYNTAX_ERRORS as exc:
        print(f"tap-wiserock-csv: error: a --config file is not valid JSON: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except EXPECTED_FAILURES as exc:
        print(f"tap-wiserock-csv: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
