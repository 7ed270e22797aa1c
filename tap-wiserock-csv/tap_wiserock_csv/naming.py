"""Column and stream names: snake_case, ASCII, safe as PostgreSQL identifiers."""

from __future__ import annotations

import re
import typing as t

from tap_wiserock_csv.errors import CsvInputError

_LOWER_OR_DIGIT_THEN_UPPER = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_UPPER_RUN_THEN_WORD = re.compile(r"(?<=[A-Z])(?=[A-Z][a-z])")  # "HTTPServer" -> "HTTP_Server"
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


def snake_name(text: str, position: int) -> str:
    """`createdAt` -> `created_at`, `1st choice` -> `_1st_choice`, `""` -> `column_<position>`."""
    name = text.strip()
    name = _LOWER_OR_DIGIT_THEN_UPPER.sub("_", name)
    name = _UPPER_RUN_THEN_WORD.sub("_", name)
    name = _NOT_ALPHANUMERIC.sub("_", name.lower()).strip("_")
    if not name:
        return f"column_{position}"
    return f"_{name}" if name[0].isdigit() else name


def column_names(headers: t.Sequence[str], source: str) -> list[str]:
    """Normalized names of a header row; two headers that collide are an error."""
    names: list[str] = []
    first_header: dict[str, str] = {}
    for position, header in enumerate(headers, start=1):
        name = snake_name(header, position)
        if name in first_header:
            raise CsvInputError(f"{source} line 1: headers {first_header[name]!r} and {header!r} "
                                f"both normalize to column name {name!r}")
        first_header[name] = header
        names.append(name)
    return names
