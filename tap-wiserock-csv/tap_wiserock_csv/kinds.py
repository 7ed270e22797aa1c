"""Column types: which kinds a column's values fit, and whole columns converted to them.

Every function takes the non-null string values of one block of one column (a pyarrow
array) and works on the whole array at once: regular expressions run in RE2 (linear
time), conversions in Arrow's C++ kernels. Only rare values (numbers with a huge
exponent, digit strings near the 64-bit limit) are looked at in Python.
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import itertools
import typing as t

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KINDS = ("boolean", "integer", "number", "date", "date-time", "string")
TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_TYPES = {"boolean": pa.bool_(), "integer": pa.int64(), "number": pa.string(), "date": pa.date32(),
               "date-time": TIMESTAMP, "string": pa.string()}

TRUE_WORDS = ("true", "yes", "y", "t")
FALSE_WORDS = ("false", "no", "n", "f")

# PostgreSQL's numeric holds up to 131072 digits before the point and 16383 after it.
NUMERIC_DIGITS_BEFORE, NUMERIC_DIGITS_AFTER = 131072, 16383
_YEAR = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999, as Python and PostgreSQL read
_INTEGER = "^-?(?:0|[1-9][0-9]*)$"  # no leading zero: "00123" is a code, not a number
_NUMBER = r"^-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_SHORT_EXPONENT_NUMBER = r"^-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$"
_LONG_EXPONENT = "[eE][+-]?0*[1-9][0-9]{3,}$"  # 1000 or more: checked against numeric's range in Python
_DATE = f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"
_DATE_TIME = (f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}[T ][0-9]{{2}}:[0-9]{{2}}(?::[0-9]{{2}})?(?:[.][0-9]{{1,9}})?"
              "(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?$")
_OFFSET = "(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
_BEYOND_MICROSECONDS = "[.][0-9]{6}[0-9]+"
_NONZERO_BEYOND_MICROSECONDS = "[.][0-9]{6}[0-9]*[1-9]"
_INT64_DIGITS = {"": "9223372036854775807", "-": "9223372036854775808"}


@functools.cache
def _case_variants(words: tuple[str, ...]) -> pa.Array:
    """Every upper/lower-case spelling: a hash lookup instead of lowercasing each value."""
    spellings = {"".join(letters) for word in words
                 for letters in itertools.product(*((ch.lower(), ch.upper()) for ch in word))}
    return pa.array(sorted(spellings), pa.string())


def _words() -> pa.Array:
    return _case_variants(TRUE_WORDS + FALSE_WORDS)


def _true_values() -> pa.Array:
    return _case_variants((*TRUE_WORDS, "1"))


def _boolean_values() -> pa.Array:
    return _case_variants((*TRUE_WORDS, *FALSE_WORDS, "0", "1"))


def null_markers(markers: t.Iterable[str]) -> pa.Array:
    """The values read as null, matched in any case (`NULL`, `null`, `NuLl`)."""
    return _case_variants(tuple(markers))


def is_flag_name(column: str) -> bool:
    """Names whose 0/1 values are flags rather than counts."""
    return column.endswith("flag") or column.startswith(("is_", "has_"))


def _all(mask: pa.Array) -> bool:
    return bool(pc.all(mask).as_py() is not False)


def _matches(values: pa.Array, pattern: str) -> pa.Array:
    return pc.match_substring_regex(values, pattern)


# -- fit: does every value fit a kind? ---------------------------------------------------------

def _in_int64(values: pa.Array) -> bool:
    try:
        pc.cast(values, pa.int64())
    except pa.ArrowInvalid:  # beyond 64 bits
        return False
    return True


def _integer_fits(values: pa.Array) -> bool:
    return _all(_matches(values, _INTEGER)) and _in_int64(values)


def _number_fits(values: pa.Array, *, integer_syntax: bool = False) -> bool:
    if (pc.max(pc.binary_length(values)).as_py() or 0) < NUMERIC_DIGITS_AFTER and (
            integer_syntax or _all(_matches(values, _SHORT_EXPONENT_NUMBER))):
        return True  # no value can leave numeric's range: no look at single values
    return (integer_syntax or _all(_matches(values, _NUMBER))) and not _numeric_misfits(values).any()


def _date_fits(values: pa.Array) -> bool:
    if not _all(_matches(values, _DATE)):
        return False
    try:
        pc.cast(values, pa.date32())
    except pa.ArrowInvalid:  # not a calendar date: 2024-02-30
        return False
    return True


def _date_time_fits(values: pa.Array) -> bool:
    if not _all(_matches(values, _DATE_TIME)):
        return False
    try:
        timestamps(values)
    except pa.ArrowInvalid:  # 2024-02-30T10:00, 24:00, a leap second
        return False
    return True


FITS: dict[str, t.Callable[[pa.Array], bool]] = {
    "boolean": lambda values: _all(pc.is_in(values, _boolean_values())),
    "integer": _integer_fits, "number": _number_fits, "date": _date_fits, "date-time": _date_time_fits,
    "string": lambda values: True,
}


CANDIDATES = frozenset({"words", "zero_one", "integer", "number", "date", "date-time"})


class ColumnProfile:
    """Which kinds every value seen so far still fits; a column is typed from all its values."""

    __slots__ = ("candidates", "converted", "seen", "sub_microseconds")

    def __init__(self) -> None:
        self.seen = False
        self.candidates = set(CANDIDATES)
        self.sub_microseconds: str | None = None  # a value that keeps the column from being a date-time
        # The values of the last `add` as int64 or as UTC instants, when checking them converted
        # them on the way (integers, date-times), else None.
        self.converted: pa.Array | None = None

    @classmethod
    def of_kind(cls, kind: str, column: str) -> ColumnProfile:
        """The profile of values already typed `kind` (by a sample, or the blocks before): the
        candidates such values can still fit, so that adding the rest of the column's values
        gives the kind a profile of every value would. `string` means values that fit nothing."""
        profile = cls()
        profile.seen = True
        profile.candidates = {
            # 0/1 in a flag column are also integers; yes/no are words only.
            "boolean": {"words", "zero_one", "integer", "number"} if is_flag_name(column) else {"words"},
            "integer": {"integer", "number"}, "number": {"number"}, "date": {"date"}, "date-time": {"date-time"},
            "string": set(),
        }[kind]
        return profile

    def add(self, values: pa.Array) -> None:
        """Non-null values of one block."""
        if not len(values):
            return
        self.seen = True
        self.converted = None
        candidates = self.candidates
        if "words" in candidates and not _all(pc.is_in(values, _words())):
            candidates.discard("words")
        if "zero_one" in candidates and not _all(pc.is_in(values, _case_variants(("0", "1")))):
            candidates.discard("zero_one")
        # Integer syntax decides "integer" and spares "number" its own pattern; once "integer" is
        # out, the number pattern alone is cheaper than both.
        if "integer" in candidates and (integers := written_integers(values)) is not None:
            self.converted, integer_syntax = integers, True
        else:
            integer_syntax = "integer" in candidates and _all(_matches(values, _INTEGER))
            if "integer" in candidates and not (integer_syntax and _in_int64(values)):
                candidates.discard("integer")
        if "number" in candidates and not _number_fits(values, integer_syntax=integer_syntax):
            candidates.discard("number")
        if "date" in candidates and not _date_fits(values):
            candidates.discard("date")
        if "date-time" in candidates and not self._date_time_fits(values):
            candidates.discard("date-time")

    def _date_time_fits(self, values: pa.Array) -> bool:
        if (instants := parsed_date_times(values)) is not None:
            self.converted = instants
            return True
        if not _all(_matches(values, _DATE_TIME)):
            return False
        if _parsed_directly(values) is not None:
            return True  # Arrow refuses more than six decimals: there are none
        if not _date_time_fits(values):
            return False
        extra = _matches(values, _NONZERO_BEYOND_MICROSECONDS)
        if _all(pc.invert(extra)):
            return True
        self.sub_microseconds = values.filter(extra)[0].as_py()
        return False

    def kind(self, column: str) -> str:
        if not self.seen:
            return "string"
        if "words" in self.candidates or ("zero_one" in self.candidates and is_flag_name(column)):
            return "boolean"
        return next((kind for kind in ("integer", "number", "date", "date-time") if kind in self.candidates), "string")


# A cast that fails takes about a microsecond per value, success a hundredth of that: the first
# values are matched by the pattern first, so that a column of other values fails at once.
_HEAD = 16


def _head_matches(values: pa.Array, pattern: str) -> bool:
    return _all(_matches(values.slice(0, _HEAD), pattern))


def written_integers(values: pa.Array) -> pa.Array | None:
    """The values as int64 when each is an integer written as bigint prints it back (`_INTEGER`
    without `-0`), else None: a cast and its way back cost less than the pattern, and the cast is
    the column's conversion."""
    if not _head_matches(values, _INTEGER):
        return None
    try:
        integers = pc.cast(values, pa.int64())
    except pa.ArrowInvalid:
        return None
    return integers if _all(pc.equal(pc.cast(integers, pa.string()), values)) else None


_COLON, _ZERO = ord(":"), ord("0")


def parsed_date_times(values: pa.Array) -> pa.Array | None:
    """The values as UTC instants when Arrow's parser takes them as they are (`_parsed_directly`)
    and each has hours and minutes and a year from 1 (what `_DATE_TIME` asks beyond that parser,
    which also takes `2024-03-01` and `2024-03-01T10`), else None: cheaper than the pattern."""
    if not pa.types.is_string(values.type) or (pc.min(pc.binary_length(values)).as_py() or 0) < len("0001-01-01T00:00") \
            or not _head_matches(values, _DATE_TIME):
        return None
    instants = _parsed_directly(values)
    if instants is None:
        return None
    starts = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset:values.offset + len(values)]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)
    year_zero = (data[starts] == _ZERO) & (data[starts + 1] == _ZERO) & (data[starts + 2] == _ZERO) & \
        (data[starts + 3] == _ZERO)
    return instants if (data[starts + 13] == _COLON).all() and not year_zero.any() else None


# -- misfits: which values do not fit a declared kind ------------------------------------------

def misfits(kind: str, values: pa.Array) -> np.ndarray:
    """A boolean mask over non-null values: True where the value does not fit `kind`."""
    if FITS[kind](values):
        return np.zeros(len(values), dtype=bool)
    if kind == "boolean":
        return _mask(pc.invert(pc.is_in(values, _boolean_values())))
    if kind == "integer":
        bad = ~_mask(_matches(values, _INTEGER))
        long = np.flatnonzero(~bad & (pc.utf8_length(values).to_numpy(zero_copy_only=False) >= 19))
        for index in long:  # compared as text: Python's int() refuses more than 4300 digits
            sign, digits = _split_sign(values[int(index)].as_py())
            limit = _INT64_DIGITS[sign]
            bad[index] = len(digits) > len(limit) or (len(digits) == len(limit) and digits > limit)
        return bad
    if kind == "number":
        return ~_mask(_matches(values, _NUMBER)) | _numeric_misfits(values)
    checked = ~_mask(_matches(values, _DATE if kind == "date" else _DATE_TIME))
    convert = (lambda v: pc.cast(v, pa.date32())) if kind == "date" else timestamps
    for index in np.flatnonzero(~checked):  # the pattern fits; the calendar may not (2024-02-30)
        try:
            convert(values[int(index):int(index) + 1])
        except pa.ArrowInvalid:
            checked[index] = True
    return checked


def _mask(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null as False."""
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _split_sign(text: str) -> tuple[str, str]:
    return ("-", text[1:]) if text.startswith("-") else ("", text)


def _numeric_misfits(values: pa.Array) -> np.ndarray:
    """Numbers PostgreSQL's numeric cannot hold: huge exponents or extremely long digit strings."""
    bad = np.zeros(len(values), dtype=bool)
    suspects = pc.or_(_matches(values, _LONG_EXPONENT), pc.greater_equal(pc.utf8_length(values), NUMERIC_DIGITS_AFTER))
    for index in np.flatnonzero(_mask(suspects)):
        try:
            _, digits, exponent = decimal.Decimal(values[int(index)].as_py()).as_tuple()
        except decimal.InvalidOperation:
            continue  # not a number at all: the pattern says so
        before, after = len(digits) + int(exponent), -int(exponent)
        bad[index] = before > NUMERIC_DIGITS_BEFORE or after > NUMERIC_DIGITS_AFTER
    return bad


# -- conversions -------------------------------------------------------------------------------

def _parsed_directly(values: pa.Array) -> pa.Array | None:
    """All naive (read as UTC) or all with offsets, at most six decimals: Arrow's parser alone."""
    for parsed_as in (pa.timestamp("us"), TIMESTAMP):  # naive values are UTC: the cast only labels them
        with contextlib.suppress(pa.ArrowInvalid):
            return pc.cast(values, parsed_as).cast(TIMESTAMP)
    return None


def timestamps(values: pa.Array) -> pa.Array:
    """Date-times as UTC instants; naive ones are read as UTC; digits beyond microseconds are cut.

    Arrow's parser takes a column that is all naive or all with offsets as it is; only a
    mixed column, a `z` or more than six decimals need the values rewritten first.
    """
    direct = _parsed_directly(values)
    if direct is not None:
        return direct
    if pc.any(pc.match_substring(values, "z")).as_py():
        values = pc.replace_substring(values, "z", "Z")
    if pc.any(_matches(values, _BEYOND_MICROSECONDS)).as_py():
        values = pc.replace_substring_regex(values, "([.][0-9]{6})[0-9]+", r"\1")
    with_offset = _matches(values, _OFFSET)
    if not _all(with_offset):
        values = pc.if_else(with_offset, values, pc.binary_join_element_wise(values, "Z", ""))
    return pc.cast(values, TIMESTAMP)


def sub_microsecond_count(values: pa.Array) -> int:
    """How many values have digits beyond microseconds that are not zeros (cut by `timestamps`)."""
    return int(pc.sum(_matches(values, _NONZERO_BEYOND_MICROSECONDS).cast(pa.int64())).as_py() or 0)


def to_arrow(kind: str, values: pa.Array) -> pa.Array:
    """A column of strings (nulls kept) as the Arrow type of `kind`; the values fit it."""
    if kind == "boolean":
        return pc.if_else(values.is_null(), pa.scalar(None, pa.bool_()), pc.is_in(values, _true_values()))
    if kind == "integer":
        return pc.cast(values, pa.int64())
    if kind == "date":
        return pc.cast(values, pa.date32())
    if kind == "date-time":
        return timestamps(values)
    if kind == "number":
        return exact_number_text(values)
    return values  # string


# JSON readers built on Python's int (json, msgspec) refuse integer literals over 4300 digits.
LONGEST_INTEGER_LITERAL = 4000


def exact_number_text(values: pa.Array) -> pa.Array:
    """The decimal text as written, except that a very long integer gets a `.0` (same value):
    written so, JSON readers read it as a decimal with every digit. Batch files carry the same
    text as RECORD messages, so both modes load the same numeric value and scale."""
    longest = pc.max(pc.utf8_length(values)).as_py()
    if longest is None or longest <= LONGEST_INTEGER_LITERAL:
        return values
    long_integer = pc.and_(pc.greater(pc.utf8_length(values), LONGEST_INTEGER_LITERAL),
                          pc.match_substring_regex(values, r"^-?[0-9]+$")).fill_null(False)
    return pc.if_else(long_integer, pc.binary_join_element_wise(values, ".0", ""), values)


def json_schema(kind: str, *, nullable: bool = True) -> dict[str, t.Any]:
    json_type = "string" if kind in {"date", "date-time"} else kind
    schema: dict[str, t.Any] = {"type": [json_type, "null"] if nullable else [json_type]}
    if json_type != kind:
        schema["format"] = kind
    return schema


def kind_of_schema(schema: dict[str, t.Any]) -> str | None:
    """The kind a (catalog) property schema declares, or None for a type this tap never emits."""
    types = schema.get("type") or []
    types = [types] if isinstance(types, str) else [name for name in types if name != "null"]
    if len(types) != 1:
        return None
    kind = types[0]
    if kind == "string":
        return schema.get("format") if schema.get("format") in {"date", "date-time"} else "string"
    return kind if kind in KINDS else None
