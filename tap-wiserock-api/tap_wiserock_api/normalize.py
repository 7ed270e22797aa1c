"""Turning the API's loosely typed values into the tap's schema types."""

from __future__ import annotations

import datetime as dt
import re
import typing as t

from tap_wiserock_api.errors import SourceDataError

TRUE_WORDS = frozenset({"y", "yes", "true", "t", "1"})
FALSE_WORDS = frozenset({"n", "no", "false", "f", "0"})
_FRACTION = re.compile(r"\.(\d+)")
# How PostgREST sends a timestamptz, and a form every supported Python's fromisoformat reads
# as it stands: parsed directly, without the normalizing steps below. ASCII digits only
# (Python's \d also matches other scripts' digits); batches.py gives Arrow the same pattern.
PLAIN_ISO_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3}|\.[0-9]{6})?[+-][0-9]{2}:[0-9]{2}"
_PLAIN_ISO = re.compile(PLAIN_ISO_PATTERN)
_UTC = dt.timezone.utc


def to_flag(value: t.Any) -> bool | None:
    """A JSON boolean, 0/1, or Y/N/yes/no/true/false/t/f in any case; null stays null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"{value!r} is not a recognised flag (expected true/false, 1/0, Y/N, yes/no, t/f)")


def to_instant(value: t.Any) -> dt.datetime | None:
    """An ISO 8601 timestamp as an aware datetime. A timestamp without an offset is taken to be UTC."""
    if value is None:
        return None
    if type(value) is str and _PLAIN_ISO.fullmatch(value):
        return dt.datetime.fromisoformat(value)
    text = str(value).strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fractional digits.
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), text, count=1)
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=_UTC)


def to_utc(value: t.Any) -> str | None:
    """An ISO 8601 timestamp as UTC text, e.g. `2024-03-01T06:30:00.123456+00:00`."""
    instant = to_instant(value)
    return None if instant is None else instant.astimezone(_UTC).isoformat()


def without_nul(value: t.Any) -> str | None:
    """PostgreSQL text cannot hold NUL (U+0000): the character is dropped."""
    if value is None:
        return None
    text = str(value)
    return text.replace("\x00", "") if "\x00" in text else text


def to_integer(value: t.Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"{value!r} is not an integer")


def converter_for(schema: dict[str, t.Any], *, instants: bool = False) -> t.Callable[[t.Any], t.Any]:
    """The conversion that makes a source value fit a JSON-schema property. Timestamps become
    UTC text (Singer records), or with `instants` aware datetimes (Arrow, which stores them in
    UTC): the same rule either way."""
    types = schema.get("type", [])
    if "boolean" in types:
        return to_flag
    if "integer" in types:
        return to_integer
    if schema.get("format") == "date-time":
        return to_instant if instants else to_utc
    return without_nul


def convert_page(rows: t.Sequence[dict[str, t.Any]], converters: dict[str, t.Callable[[t.Any], t.Any]],
                 table: str, fast: dict[str, t.Callable[[list[t.Any]], t.Any]] | None = None) -> dict[str, t.Any]:
    """A page's rows as converted columns, one column at a time.

    `fast` may offer a column-wise conversion for some columns: it returns the converted column,
    or None when a value is outside what it handles exactly as the value's converter would;
    then the converter takes every value. A value that cannot be converted raises
    SourceDataError naming table, row id and column.
    """
    columns: dict[str, t.Any] = {}
    for column, convert in converters.items():
        quick = (fast or {}).get(column)
        if quick is not None and (converted := quick([row.get(column) for row in rows])) is not None:
            columns[column] = converted
            continue
        values: list[t.Any] = []
        append = values.append
        for row in rows:
            try:
                append(convert(row.get(column)))
            except ValueError as exc:
                raise SourceDataError(f"table '{table}', row id {row.get('id')}, column {column}: {exc}") from None
        columns[column] = values
    return columns


def records_of(columns: dict[str, list[t.Any]]) -> list[dict[str, t.Any]]:
    """Converted columns as records, in row order."""
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
