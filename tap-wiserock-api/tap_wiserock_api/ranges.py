"""Cutting a table's keys into ranges by arithmetic, where the key's order is known exactly.

A range is the keys from one cut up to (not including) the next: any increasing cuts cover
every key exactly once, whatever rows come and go meanwhile, so a cut need not be a key that
exists; it must only be a value that the server orders where the arithmetic says. That holds for:

- integer and number keys (JSON numbers: the column is numeric): the cut is the number;
- uuid keys: PostgreSQL orders uuid by its 16 bytes, a big-endian integer (v4 and v7 alike).
  A key typed from rows is only a string, so a key whose values are canonical lowercase uuids
  (as PostgreSQL writes uuid) is cut as one: such strings also order by those bytes as text,
  in any collation (same length, hyphens in the same places, digits before letters);
- dates and timestamps, when the description gives their type (a text column holding dates
  does not order as instants): instants in microseconds, a timestamptz cut written in UTC
  with its offset, which PostgreSQL reads whatever the session's time zone.

Any other key (text, several columns, a type not known) has no cut here: the server names the
bounds instead (client.py: keys at row offsets, which it then orders itself).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import typing as t
import uuid

from tap_wiserock_api.kinds import INTEGER, NUMBER

_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MODIFIER = re.compile(r"\([^)]*\)")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)
_EXTRA_DIGITS = 3  # number cuts get this many more decimal places than the bounds have


class Scale(t.NamedTuple):
    """A key type as integers: the cut arithmetic is exact."""

    to_int: t.Callable[[t.Any], int]
    from_int: t.Callable[[int], t.Any]


def _base_type(pg_type: str | None) -> str:
    return " ".join(_MODIFIER.sub("", pg_type or "").split()).lower()


def _number_scale(low: t.Any, top: t.Any) -> Scale | None:
    if not all(isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool) for value in (low, top)):
        return None  # "NaN", "Infinity": numeric's specials are strings
    values = [decimal.Decimal(value) for value in (low, top)]
    if not all(value.is_finite() for value in values):
        return None
    places = max(0, *(-int(value.as_tuple().exponent) for value in values)) + _EXTRA_DIGITS
    return Scale(lambda value: int(decimal.Decimal(value).scaleb(places)),
                 lambda number: decimal.Decimal(number).scaleb(-places))


def _instant_scale(zoned: bool) -> Scale:
    def to_int(value: t.Any) -> int:
        instant = dt.datetime.fromisoformat(value)
        if zoned:
            return (instant - _EPOCH) // _MICROSECOND
        return (instant.replace(tzinfo=dt.timezone.utc) - _EPOCH) // _MICROSECOND

    def from_int(number: int) -> str:
        instant = _EPOCH + dt.timedelta(microseconds=number)
        return instant.isoformat() if zoned else instant.replace(tzinfo=None).isoformat()

    return Scale(to_int, from_int)


_DATE_SCALE = Scale(lambda value: dt.date.fromisoformat(value).toordinal(),
                    lambda number: dt.date.fromordinal(number).isoformat())
_UUID_SCALE = Scale(lambda value: uuid.UUID(value).int, lambda number: str(uuid.UUID(int=number)))


def scale_of(kind: str, pg_type: str | None, low: t.Any, top: t.Any) -> Scale | None:
    """How to cut a single-column key whose lowest and highest values are `low` and `top`, or None."""
    base = _base_type(pg_type)
    if kind == INTEGER and isinstance(low, int) and isinstance(top, int):
        return Scale(int, int)
    if kind in {INTEGER, NUMBER}:
        return _number_scale(low, top)
    if not (isinstance(low, str) and isinstance(top, str)):
        return None
    if (base == "uuid" or not base or base in {"text", "character varying", "character", "citext"}) and all(
            _UUID_TEXT.fullmatch(value) for value in (low, top)):
        return _UUID_SCALE
    if base in {"timestamp with time zone", "timestamptz"}:
        return _instant_scale(zoned=True)
    if base in {"timestamp without time zone", "timestamp"}:
        return _instant_scale(zoned=False)
    return _DATE_SCALE if base == "date" else None


def order_value(kind: str, pg_type: str | None, value: t.Any) -> t.Any:
    """A single-column key value as something Python orders as the server does (for the checks
    that a page lies within its range), or None when that order is not known here."""
    base = _base_type(pg_type)
    try:
        if kind in {INTEGER, NUMBER}:
            number = decimal.Decimal(value) if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool) else None
            return number if number is not None and number.is_finite() else None
        if not isinstance(value, str):
            return None
        if (base == "uuid" or not base or base in {"text", "character varying", "character", "citext"}) and (
                _UUID_TEXT.fullmatch(value)):
            return uuid.UUID(value).int
        if base in {"timestamp with time zone", "timestamptz"}:
            return _instant_scale(zoned=True).to_int(value)
        if base in {"timestamp without time zone", "timestamp"}:
            return _instant_scale(zoned=False).to_int(value)
        return _DATE_SCALE.to_int(value) if base == "date" else None
    except (ValueError, OverflowError):
        return None


def arithmetic_cuts(kind: str, pg_type: str | None, low: t.Any, top: t.Any, count: int) -> list[t.Any] | None:
    """Up to `count - 1` cuts spreading the keys after `low` up to `top` evenly over `count`
    ranges: increasing, each above `low` and at most `top`. None when this key has no arithmetic
    (then the server names the bounds)."""
    scale = scale_of(kind, pg_type, low, top)
    if scale is None:
        return None
    try:
        first, last = scale.to_int(low), scale.to_int(top)
    except (ValueError, OverflowError):  # infinity, a BC date: no arithmetic for this table
        return None
    if last <= first:
        return []
    cuts = sorted({first + (last - first) * n // count for n in range(1, count)} - {first})
    try:
        return [scale.from_int(cut) for cut in cuts]
    except (ValueError, OverflowError):
        return None
