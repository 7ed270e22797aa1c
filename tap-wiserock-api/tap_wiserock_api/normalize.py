"""The API's values as the tap emits them: exactly as PostgREST wrote them, checked against the
column's type. Numbers stay exact (pages are decoded with decimals), date-times keep their
text (PostgreSQL reads the instant from it), flags become booleans, NUL characters go.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import typing as t

import msgspec

from tap_wiserock_api.errors import SourceDataError
from tap_wiserock_api.kinds import (
    BOOLEAN,
    DATE,
    DATE_TIME,
    INTEGER,
    JSON_KINDS,
    NUMBER,
    STRING,
)

TRUE_WORDS = frozenset({"y", "yes", "true", "t", "1"})
FALSE_WORDS = frozenset({"n", "no", "false", "f", "0"})
# Non-finite values: PostgreSQL writes them as JSON strings; numeric and float columns read them back.
NUMBER_WORDS = frozenset({"NaN", "Infinity", "-Infinity"})
# Dates and timestamps that are not a calendar day: date and timestamp columns read them back.
INFINITY_WORDS = frozenset({"infinity", "-infinity"})
# ASCII digits only (Python's \d also matches other scripts' digits).
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# How PostgREST writes a timestamp, and a form every supported Python's fromisoformat reads as it stands.
PLAIN_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3}|\.[0-9]{6})?(?:[+-][0-9]{2}:[0-9]{2})?")
DATE_TIME_PATTERN = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[T ](?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.(?P<fraction>[0-9]+))?)?)"
    r"(?P<zone>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?")
INT64 = range(-(2**63), 2**63)
_encode_json = msgspec.json.Encoder(decimal_format="number").encode
Converter = t.Callable[[t.Any], t.Any]


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


def is_date(text: str) -> bool:
    if not DATE_PATTERN.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_date_time(text: str) -> bool:
    """An ISO 8601 date-time PostgreSQL reads to the same instant: a real calendar time, any
    offset or none (read as UTC), and no digits beyond microseconds that are not zeros."""
    if PLAIN_DATE_TIME.fullmatch(text):
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            return False
        return True
    match = DATE_TIME_PATTERN.fullmatch(text)
    if match is None or (match["fraction"] and match["fraction"][6:].strip("0")):
        return False
    clock = match["time"] + (":00" if len(match["time"]) == 5 else "")
    if match["fraction"]:
        clock = clock.split(".")[0] + "." + match["fraction"][:6].ljust(6, "0")
    zone = match["zone"] or ""
    if zone in {"Z", "z"}:
        zone = "+00:00"
    elif zone:  # +05, +0530 and +05:30 as Python 3.10 reads them: +05:30
        digits = zone[1:].replace(":", "")
        zone = f"{zone[0]}{digits[:2]}:{digits[2:] or '00'}"
    try:
        dt.datetime.fromisoformat(f"{match['date']}T{clock}{zone}")
    except ValueError:
        return False
    return True


def without_nul(value: t.Any) -> t.Any:
    """PostgreSQL text cannot hold NUL (U+0000): the character is dropped, also inside JSON values."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def json_text(value: t.Any) -> str:
    return _encode_json(value).decode()


def _integer(value: t.Any) -> t.Any:
    if value is None or (type(value) is int and value in INT64):
        return value
    raise ValueError(f"{value!r} is not an integer (64-bit)")


def _number(value: t.Any) -> t.Any:
    if value is None or (isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool)) or value in NUMBER_WORDS:
        return value
    raise ValueError(f"{value!r} is not a number")


def _checked_text(check: t.Callable[[str], bool], what: str) -> Converter:
    def convert(value: t.Any) -> t.Any:
        if value is None or (isinstance(value, str) and (value in INFINITY_WORDS or check(value))):
            return value
        raise ValueError(f"{value!r} is not {what}")
    return convert


def _text(value: t.Any) -> str | None:
    """Strings as they are; another JSON value (a column forced to string) as its JSON text."""
    if value is None:
        return None
    text = value if type(value) is str else json_text(value)
    return text.replace("\x00", "") if "\x00" in text else text


def _declared_text(value: t.Any) -> t.Any:
    """A date or timestamp column's own rendering: PostgreSQL reads back whatever it wrote."""
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a string")


def converter_for(kind: str, *, declared: bool) -> Converter:
    """The check and conversion of a value for a column of this kind. `declared`: the type comes
    from the API's description (PostgreSQL's own output, trusted for dates and timestamps);
    otherwise it was forced by `column_types` or inferred, and every value is checked."""
    if kind == BOOLEAN:
        return to_flag
    if kind == INTEGER:
        return _integer
    if kind == NUMBER:
        return _number
    if kind == DATE:
        return _declared_text if declared else _checked_text(is_date, "an ISO 8601 date")
    if kind == DATE_TIME:
        return _declared_text if declared else _checked_text(is_date_time, "an ISO 8601 date-time")
    if kind == STRING:
        return _text
    if kind in JSON_KINDS:
        return without_nul
    raise ValueError(f"unknown column type {kind!r}")


# Columns whose values are all of these types need no conversion (strings: when free of NUL).
_AS_THEY_ARE: dict[Converter, frozenset[type]] = {
    _text: frozenset({str, type(None)}), _declared_text: frozenset({str, type(None)}),
    to_flag: frozenset({bool, type(None)}), _number: frozenset({int, decimal.Decimal, type(None)}),
}


def _as_they_are(convert: Converter, values: list[t.Any]) -> bool:
    """Whether a whole column passes unchanged: checked at C speed where Python allows."""
    kinds = set(map(type, values))
    if convert is _integer:
        numbers = [value for value in values if value is not None]
        return kinds <= {int, type(None)} and (not numbers or (min(numbers) in INT64 and max(numbers) in INT64))
    accepted = _AS_THEY_ARE.get(convert)
    if accepted is None or not kinds <= accepted:
        return False
    return str not in kinds or not any("\x00" in value for value in values if value is not None)


def convert_page(rows: t.Sequence[dict[str, t.Any]], converters: dict[str, Converter], table: str,
                 key: t.Sequence[str]) -> dict[str, list[t.Any]]:
    """A page's rows as converted columns, one column at a time. A value that does not fit its
    column raises SourceDataError naming table, row key and column."""
    columns: dict[str, list[t.Any]] = {}
    for column, convert in converters.items():
        values = [row.get(column) for row in rows]
        if _as_they_are(convert, values):
            columns[column] = values
            continue
        try:
            columns[column] = [convert(value) for value in values]
        except ValueError:
            for row in rows:  # the value that failed, named with its row
                try:
                    convert(row.get(column))
                except ValueError as exc:
                    raise SourceDataError(f"table '{table}', row {describe_key(row, key)}, column {column}: {exc}") from None
            raise
    return columns


def describe_key(row: dict[str, t.Any], key: t.Sequence[str]) -> str:
    """`id 7`, or `(tenant, seq) ('a', 3)`."""
    if len(key) == 1:
        return f"{key[0]} {row.get(key[0])!r}" if isinstance(row.get(key[0]), str) else f"{key[0]} {row.get(key[0])}"
    return f"({', '.join(key)}) ({', '.join(repr(row.get(name)) for name in key)})"


def records_of(columns: dict[str, list[t.Any]]) -> list[dict[str, t.Any]]:
    """Converted columns as records, in row order."""
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
