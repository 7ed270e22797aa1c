"""Types from the rows themselves, for a key that may not read the API's description.

Each column's type is the narrowest that holds every value seen so far (the first page, then
each page as it is read): JSON booleans are booleans, integers within 64 bits integers, other
numbers (exact decimals, larger integers) numbers; strings that are all ISO 8601 dates or all
ISO 8601 date-times are dates or date-times (`infinity` fits both), other strings strings;
objects and arrays JSON; values of mixed JSON kinds (only a json column has them) JSON.

While a table is read, a column typed date or date-time is sent as a string, exactly as
written: the stream's last SCHEMA message gives it its type once every value has been seen,
and the loader converts the text it holds (PostgreSQL reads the instant from it, exactly).
Had it been sent as a date-time, a later value such as `n/a` would turn the column into text
holding PostgreSQL's rendering of the instants, not the API's text. Other types change while
reading only in ways the loader converts exactly (integer to number, a scalar to JSON).
"""

from __future__ import annotations

import decimal
import typing as t

from tap_wiserock_api.errors import SourceDataError
from tap_wiserock_api.kinds import ARRAY, BOOLEAN, DATE, DATE_TIME, INTEGER, JSON, NUMBER, OBJECT, STRING
from tap_wiserock_api.normalize import INFINITY_WORDS, INT64, NUMBER_WORDS, describe_key, is_date, is_date_time, json_text

# What one value is: the classes a column's type is made from.
_BOOL, _INT, _BIG, _DECIMAL, _OBJECT, _ARRAY = "bool", "int", "big", "decimal", "object", "array"
_DAY, _INSTANT, _INFINITY, _NON_FINITE, _TEXT = "day", "instant", "infinity", "non-finite", "text"
_NUMBERS = frozenset({_INT, _BIG, _DECIMAL})
_STRINGS = frozenset({_DAY, _INSTANT, _INFINITY, _NON_FINITE, _TEXT})


def _class_of_string(text: str) -> str:
    if text in INFINITY_WORDS:
        return _INFINITY
    if text in NUMBER_WORDS:
        return _NON_FINITE
    if is_date_time(text):
        return _INSTANT
    return _DAY if is_date(text) else _TEXT


def _class_of(value: t.Any) -> str:
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, int):
        return _INT if value in INT64 else _BIG
    if isinstance(value, (decimal.Decimal, float)):
        return _DECIMAL
    if isinstance(value, dict):
        return _OBJECT
    if isinstance(value, list):
        return _ARRAY
    return _class_of_string(value)


def kind_of(classes: t.AbstractSet[str]) -> str | None:
    """The column type for the value classes seen; None when only nulls were seen."""
    if not classes:
        return None
    if classes == {_BOOL}:
        return BOOLEAN
    if classes == {_INT}:
        return INTEGER
    if classes & _NUMBERS and classes <= _NUMBERS | {_NON_FINITE}:
        return NUMBER
    if classes <= _STRINGS:
        if _DAY in classes and classes <= {_DAY, _INFINITY}:
            return DATE
        if _INSTANT in classes and classes <= {_INSTANT, _INFINITY}:
            return DATE_TIME
        return STRING
    if classes == {_OBJECT}:
        return OBJECT
    return ARRAY if classes == {_ARRAY} else JSON


def sent_kind(kind: str | None) -> str:
    """What a column of this (final) type is sent as while the table is read."""
    return STRING if kind in {None, DATE, DATE_TIME} else kind


def _observe(classes: set[str], values: t.Sequence[t.Any]) -> None:
    """Add the classes of a column's values, grouped by JSON type (cheap for a whole page);
    strings are matched once per distinct value, and not at all once the column is plain text."""
    types = set(map(type, values))
    types.discard(type(None))
    if not types:
        return
    if str in types and not (_TEXT in classes and classes.isdisjoint(_NUMBERS) and _BOOL not in classes):
        classes.update(map(_class_of_string, {value for value in values if type(value) is str}))
    elif str in types:
        classes.add(_TEXT)
    if int in types:
        numbers = [value for value in values if type(value) is int]
        if min(numbers) in INT64 and max(numbers) in INT64:
            classes.add(_INT)
        else:
            classes.update(map(_class_of, numbers))
    if types - {str, int}:
        classes.update(_class_of(value) for value in values if type(value) not in {str, int, type(None)})


def _exact(before: t.AbstractSet[str], sent: str, after: str) -> bool:
    """Whether values sent as `sent` (of classes `before`) convert exactly into `after` in the
    loader (PostgreSQL's cast through text): not text as written into JSON, nor NaN into JSON."""
    if not before:
        return True  # only nulls were sent
    return {
        (STRING, NUMBER): before <= {_NON_FINITE},
        (INTEGER, NUMBER): True,
        (INTEGER, JSON): True,
        (BOOLEAN, JSON): True,
        (NUMBER, JSON): _NON_FINITE not in before,
        (OBJECT, JSON): True,
        (ARRAY, JSON): True,
    }.get((sent, after), False)


class TableTyping:
    """The types of one table's columns (those `column_types` does not force), from its rows."""

    def __init__(self, table: str, columns: t.Iterable[str], key: t.Sequence[str]) -> None:
        self.table = table
        self.key = key
        self.classes: dict[str, set[str]] = {name: set() for name in columns}

    def kinds(self) -> dict[str, str]:
        """Each column's type from every value seen (a column of nulls only is a string)."""
        return {name: kind_of(classes) or STRING for name, classes in self.classes.items()}

    def sent(self) -> dict[str, str]:
        """Each column's type as sent while the table is read."""
        return {name: sent_kind(kind_of(classes)) for name, classes in self.classes.items()}

    def observe(self, rows: t.Sequence[dict[str, t.Any]]) -> dict[str, str]:
        """Take a page's values into account; the columns whose sent type changes, with the new
        type. A change the loader cannot make exactly raises SourceDataError naming the value."""
        changes = {}
        for name, classes in self.classes.items():
            before = set(classes)
            _observe(classes, [row.get(name) for row in rows])
            if classes == before:
                continue
            sent, after = sent_kind(kind_of(before)), sent_kind(kind_of(classes))
            if sent == after:
                continue
            if not _exact(before, sent, after):
                row = next(row for row in rows if row.get(name) is not None and _class_of(row[name]) not in before)
                raise SourceDataError(
                    f"table '{self.table}', row {describe_key(row, self.key)}, column {name}: {_shown(row[name])} after "
                    f"{sent} values: the column holds mixed JSON values, which the rows already sent cannot become "
                    f"exactly; give it a type in the tables setting (\"column_types\": {{\"{name}\": \"object\"}} "
                    "loads any JSON value as jsonb), or use a key that may read the API's description")
            changes[name] = after
        return changes


def _shown(value: t.Any) -> str:
    text = value if isinstance(value, str) else json_text(value)
    return repr(text[:60] + ("..." if len(text) > 60 else "")) if isinstance(value, str) else text[:60]
