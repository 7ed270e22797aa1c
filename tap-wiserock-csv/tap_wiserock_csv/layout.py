"""The header path: from a file's first row to its columns, forced kinds and keys.

Where the rows start (`skip_lines`, `header: false`) is the readers' part (`source.py`,
`reader.py`); what the first row means, and the errors that point at these settings, are here.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import typing as t

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.exact import ExactRows, Row
from tap_wiserock_csv.naming import column_names, renamed_columns, resolve_columns
from tap_wiserock_csv.source import Utf8Source

if t.TYPE_CHECKING:
    from tap_wiserock_csv.plan import FileOptions

_USUAL_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_HINT_ROWS = 20  # rows after the first that the title-line hint looks at


@dataclasses.dataclass
class Layout:
    """A file's first row read with the file's options: column names, forced kinds and keys."""

    headers: list[str]  # as written; empty strings for a file without a header
    columns: list[str]
    forced: dict[str, str]
    keys: list[str]

    @classmethod
    def of(cls, options: FileOptions, first_row: list[str], line: int) -> Layout:
        """`first_row`: the header, or with `header: false` the first data row (its width)."""
        _refuse_wrong_delimiter(options, first_row, line)
        headers = first_row if options.dialect.header else [""] * len(first_row)  # named column_1 ... column_n
        columns = column_names(headers, options.label, line, rename_repeats=options.duplicate_headers == "rename")
        requested = dict(options.column_types)
        types = resolve_columns(requested, headers, columns, source=options.label, what="column_types columns")
        forced = {types[name]: kind for name, kind in requested.items()}
        if options.keys is None:
            keys = ["id"] if "id" in columns else []
        else:
            by_name = resolve_columns(options.keys, headers, columns, source=options.label, what="key columns")
            keys = list(dict.fromkeys(by_name[name] for name in options.keys))
        return cls(headers, columns, forced, keys)

    @property
    def renamed(self) -> list[str]:
        """Headers that repeat a name, with the names they got (empty when none repeat)."""
        return renamed_columns(self.headers, self.columns)


def _refuse_wrong_delimiter(options: FileOptions, first_row: list[str], line: int) -> None:
    if len(first_row) != 1:
        return
    what = "header" if options.dialect.header else "first row"
    for delimiter, name in _USUAL_DELIMITERS.items():
        if delimiter != options.dialect.delimiter and delimiter in first_row[0]:
            if title_line_hint(options):
                return  # the next lines have fields with this delimiter: a title line, not the wrong delimiter
            raise CsvInputError(
                f"{options.label} line {line}: the {what} is one column holding a {name} ({delimiter!r}): the file "
                f"seems to be {name}-separated; set \"delimiter\": {delimiter!r} in its files entry "
                f"({{\"path\": \"{options.path.name}\", \"delimiter\": {delimiter!r}}}) or the delimiter setting"
                .replace("'", '"'))


def refuse_nothing_after_skipped_lines(options: FileOptions, lines_skipped: int) -> None:
    """A file with no row after its `skip_lines` fails; a zero-byte file is only empty."""
    wanted = options.dialect.skip_lines
    if not wanted or not lines_skipped:
        return
    if lines_skipped < wanted:
        raise CsvInputError(f"{options.label}: skip_lines is {wanted}, but the file has only {lines_skipped} "
                            f"line{'s' if lines_skipped != 1 else ''}")
    what = "header" if options.dialect.header else "data"
    raise CsvInputError(f"{options.label}: no {what} line after the {wanted} lines skip_lines passes over")


def title_line_hint(options: FileOptions) -> str | None:
    """Where the first row has fewer fields than most of the next rows: what to set.

    Reports and exports often start with a title line (`Sales report,2026-11-30`) above the
    header; read as the header, it makes every row ragged. Looked at only once a file failed, or
    when its header looks like another delimiter's.
    """
    dialect = options.dialect
    source = Utf8Source(options.path, dialect.encoding, 1 << 16, skip_lines=dialect.skip_lines)
    widths: list[tuple[int, int]] = []  # (line, fields) of the first row, then of up to _HINT_ROWS rows
    for row in ExactRows(b"", source.chunks(), dialect.skip_lines + 1, dialect):
        if not widths and not isinstance(row, Row):
            return None  # a first row that is not one clean row: not this pattern
        if isinstance(row, Row) and any(value is not None for value in row.values):
            widths.append((row.lineno, len(row.values)))
            if len(widths) > _HINT_ROWS:
                break
    if len(widths) < 2:
        return None
    (line, width), rest = widths[0], widths[1:]
    usual, count = collections.Counter(found for _, found in rest).most_common(1)[0]
    if usual <= width or count * 2 <= len(rest):
        return None
    header_line = next(lineno for lineno, found in rest if found == usual)
    example = json.dumps({"path": options.path.name, "skip_lines": header_line - 1})
    return (f"line {line} has {width} field{'s' if width != 1 else ''} where most of the next lines have {usual}: "
            f"if the file starts with title lines, set skip_lines in its files entry, e.g. {example}")


def with_title_line_hint(error: CsvInputError, options: FileOptions) -> CsvInputError:
    """The error, with the title-line hint when the file's first rows fit that pattern."""
    hint = title_line_hint(options)
    return error if hint is None else CsvInputError(f"{error}; {hint}")
