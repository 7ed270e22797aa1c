"""tap-wiserock-csv: every CSV file of a folder as a typed Singer stream."""

from __future__ import annotations

import json
import pathlib
import sys
from functools import cached_property

import simplejson
from dotenv import find_dotenv, load_dotenv
from singer_sdk import Tap
from singer_sdk import typing as th

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.inference import KINDS
from tap_wiserock_csv.naming import snake_name
from tap_wiserock_csv.reader import Dialect
from tap_wiserock_csv.streams import CsvFileStream, FileOverride, plan_file
from tap_wiserock_csv.writer import ActivateVersionAtEndWriter

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

# Failures a user can act on: reported in one line, without a traceback.
EXPECTED_FAILURES = (CsvInputError, FileNotFoundError, UnicodeError, LookupError)
# singer-sdk reads config files with simplejson.
CONFIG_SYNTAX_ERRORS = (json.JSONDecodeError, simplejson.JSONDecodeError)


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
        th.Property("on_bad_row", th.StringType(allowed_values=["fail", "skip"]), default="fail",
                    title="On a bad row",
                    description="fail: stop with an error naming file and line; skip: log, count and leave out"),
        th.Property("add_metadata_columns", th.BooleanType, default=False, title="Add metadata columns",
                    description="Add _sdc_source_file and _sdc_source_lineno to every record"),
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
                th.Property("keys", th.ArrayType(th.StringType), description="Primary key columns"),
                th.Property("column_types", th.ObjectType(additional_properties=th.StringType(allowed_values=list(KINDS))),
                            description="Forced types by column name: " + ", ".join(KINDS)),
            )),
            title="Per-file overrides",
            description="Listed files are emitted first, in this order (parents before children); "
                        "the rest follow by name",
        ),
    ).to_dict()

    @cached_property
    def dialect(self) -> Dialect:
        delimiter, quotechar = self.config["delimiter"], self.config["quotechar"]
        if len(delimiter) != 1 or len(quotechar) != 1:
            raise CsvInputError("delimiter and quotechar must be one character each")
        return Dialect(delimiter, quotechar, self.config["encoding"])

    def csv_files(self) -> list[tuple[pathlib.Path, FileOverride | None]]:
        """The folder's CSV files: those named in `files` first, in that order, then by name."""
        folder = pathlib.Path(self.config["data_dir"])
        if not folder.is_dir():
            raise CsvInputError(f"data_dir {str(folder)!r} is not a folder (working directory: {pathlib.Path.cwd()})")
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        overrides = [FileOverride.from_config(entry) for entry in self.config.get("files") or []]
        by_name = {path.name: path for path in found}
        ordered: list[tuple[pathlib.Path, FileOverride | None]] = []
        for entry in overrides:
            if entry.path not in by_name:
                raise CsvInputError(f"files entry {entry.path!r}: no such CSV file in {str(folder)!r}")
            ordered.append((by_name.pop(entry.path), entry))
        ordered += [(path, None) for path in found if path.name in by_name]
        return ordered

    @override
    def discover_streams(self) -> list[CsvFileStream]:
        streams: dict[str, CsvFileStream] = {}
        for path, entry in self.csv_files():
            label = str(path)
            name = (entry and entry.stream) or snake_name(path.stem, 1)
            if name in streams:
                raise CsvInputError(f"{label} and {streams[name].plan.label} both make stream {name!r}; "
                                    "name one of them with a files entry")
            plan = plan_file(path, label, name, self.dialect, entry,
                             skip_bad_rows=self.config["on_bad_row"] == "skip")
            if plan is None:
                self.logger.warning("Skipping %s: the file is empty (not even a header).", label)
                continue
            streams[name] = CsvFileStream(self, plan)
        if not streams:
            self.logger.warning("No CSV files with a header in %s.", self.config["data_dir"])
        return list(streams.values())

    @override
    def load_streams(self) -> list[CsvFileStream]:
        """Keep the discovery order, parents first (the SDK's default sorts by name)."""
        return self.discover_streams()


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
