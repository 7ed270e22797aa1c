"""Turning the API's loosely typed values into the tap's schema types."""

from __future__ import annotations

import datetime as dt
import re
import typing as t

TRUE_WORDS = frozenset({"y", "yes", "true", "t", "1"})
FALSE_WORDS = frozenset({"n", "no", "false", "f", "0"})
_FRACTION = re.compile(r"\.(\d+)")


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


def to_utc(value: t.Any) -> str | None:
    """An ISO 8601 timestamp as UTC. A timestamp without an offset is taken to be UTC."""
    if value is None:
        return None
    text = str(value).strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10's fromisoformat wants exactly 3 or 6 fractional digits.
    text = _FRACTION.sub(lambda m: "." + m[1][:6].ljust(6, "0"), text, count=1)
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.timezone.utc)
    return instant.astimezone(dt.timezone.utc).isoformat()


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


def converter_for(schema: dict[str, t.Any]) -> t.Callable[[t.Any], t.Any]:
    """The conversion that makes a source value fit a JSON-schema property."""
    types = schema.get("type", [])
    if "boolean" in types:
        return to_flag
    if "integer" in types:
        return to_integer
    if schema.get("format") == "date-time":
        return to_utc
    return without_nul
