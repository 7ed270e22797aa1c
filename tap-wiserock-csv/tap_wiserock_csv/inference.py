"""Column types, inferred from every value of a file, and the conversions they imply."""

from __future__ import annotations

import datetime as dt
import re
import typing as t

KINDS = ("boolean", "integer", "number", "date", "date-time", "string")

TRUE_WORDS = frozenset({"true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "no", "n", "f"})
BOOLEAN_WORDS = TRUE_WORDS | FALSE_WORDS
INT64_MAX = 2**63 - 1

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")  # no leading zero: "00123" is a code, not a number
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|-?\.[0-9]+(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}(?::?\d{2})?)?")


def is_flag_name(column: str) -> bool:
    """Names whose 0/1 values are flags rather than counts."""
    return column.endswith("flag") or column.startswith(("is_", "has_"))


class ColumnProfile:
    """Which kinds every value seen so far still fits."""

    __slots__ = ("boolean_words", "date", "date_time", "integer", "number", "seen", "zero_one")

    def __init__(self) -> None:
        self.seen = False
        self.boolean_words = self.zero_one = self.integer = self.number = self.date = self.date_time = True

    @property
    def undecided(self) -> bool:
        return self.boolean_words or self.zero_one or self.number or self.date or self.date_time

    def add(self, value: str) -> None:
        self.seen = True
        if self.boolean_words:
            self.boolean_words = value.lower() in BOOLEAN_WORDS
        if self.zero_one:
            self.zero_one = value in ("0", "1")
        if self.integer:
            self.integer = _INTEGER.fullmatch(value) is not None and abs(int(value)) <= INT64_MAX
        if self.number:
            self.number = _NUMBER.fullmatch(value) is not None
        if self.date:
            self.date = _is_date(value)
        if self.date_time:
            self.date_time = _parse_date_time(value) is not None

    def kind(self, column: str) -> str:
        if not self.seen:
            return "string"
        if self.boolean_words or (self.zero_one and is_flag_name(column)):
            return "boolean"
        for kind, fits in (("integer", self.integer), ("number", self.number),
                           ("date", self.date), ("date-time", self.date_time)):
            if fits:
                return kind
        return "string"


def json_schema(kind: str, *, nullable: bool = True) -> dict[str, t.Any]:
    json_type = "string" if kind in {"date", "date-time"} else kind
    schema: dict[str, t.Any] = {"type": [json_type, "null"] if nullable else [json_type]}
    if json_type != kind:
        schema["format"] = kind
    return schema


def converter(kind: str) -> t.Callable[[str], t.Any]:
    """Text -> value of that kind; raises ValueError when the text does not fit."""
    return _CONVERTERS[kind]


def _to_boolean(value: str) -> bool:
    word = value.lower()
    if word in TRUE_WORDS or word == "1":
        return True
    if word in FALSE_WORDS or word == "0":
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _to_integer(value: str) -> int:
    if _INTEGER.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _to_number(value: str) -> float:
    if _NUMBER.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _to_date(value: str) -> str:
    if not _is_date(value):
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
    return value


def _to_date_time(value: str) -> str:
    instant = _parse_date_time(value)
    if instant is None:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time")
    if instant.tzinfo is not None:
        instant = instant.astimezone(dt.timezone.utc)
    return instant.isoformat()


_CONVERTERS: dict[str, t.Callable[[str], t.Any]] = {
    "boolean": _to_boolean, "integer": _to_integer, "number": _to_number,
    "date": _to_date, "date-time": _to_date_time, "string": str,
}


def _is_date(value: str) -> bool:
    if _DATE.fullmatch(value) is None:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _parse_date_time(value: str) -> dt.datetime | None:
    """ISO 8601 date and time, with or without an offset; written the way Python 3.10 reads."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return None
    date, hours_minutes, seconds, fraction, offset = match.groups()
    text = f"{date}T{hours_minutes}{seconds or ':00'}"
    if fraction:
        text += "." + fraction[:6].ljust(6, "0")
    if offset:
        if offset in {"Z", "z"}:
            offset = "+00:00"
        elif len(offset) == 3:
            offset += ":00"
        elif ":" not in offset:
            offset = f"{offset[:3]}:{offset[3:]}"
        text += offset
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
