"""Column types: the names `column_types` takes, PostgreSQL's types mapped onto them, and the
JSON schema each one is emitted with.

The names are those of tap-wiserock-csv where they overlap (boolean, integer, number, date,
date-time, string) plus `object` and `array` for JSON values. `json` is internal: a json or
jsonb column, or values of mixed JSON kinds, which may hold any JSON value.
"""

from __future__ import annotations

import re
import typing as t

BOOLEAN = "boolean"
INTEGER = "integer"
NUMBER = "number"
DATE = "date"
DATE_TIME = "date-time"
STRING = "string"
OBJECT = "object"
ARRAY = "array"
JSON = "json"
SETTING_KINDS = (BOOLEAN, INTEGER, NUMBER, DATE, DATE_TIME, STRING, OBJECT, ARRAY)
KINDS = (*SETTING_KINDS, JSON)
JSON_KINDS = frozenset({OBJECT, ARRAY, JSON})  # loaded as jsonb
# Key columns PostgREST can order and compare with gt/eq: keyset paging works on these.
ORDERABLE_KINDS = frozenset({INTEGER, NUMBER, DATE, DATE_TIME, STRING})
FLAG_COLUMN = "activeflag"  # any spelling of a flag is a boolean, wherever a column of this name appears

_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint", "int2", "int4", "int8", "smallserial", "serial", "bigserial"})
_NUMBER_TYPES = frozenset({"numeric", "decimal", "real", "double precision", "float4", "float8"})
_DATE_TIME_TYPES = frozenset({"timestamp with time zone", "timestamp without time zone", "timestamptz", "timestamp"})
_MODIFIER = re.compile(r"\([^)]*\)")


def kind_of_format(pg_type: str) -> str:
    """The kind of a PostgreSQL type as PostgREST's OpenAPI `format` spells it (`bigint`,
    `character varying(40)`, `timestamp(3) with time zone`, `text[]`, `jsonb`, an enum's name).
    Types JSON renders as strings (text, uuid, time, interval, inet, enums, money) are strings."""
    base = " ".join(_MODIFIER.sub("", pg_type).split()).lower()
    if base.endswith("[]"):
        return ARRAY
    if base in {"json", "jsonb"}:
        return JSON
    if base in {"boolean", "bool"}:
        return BOOLEAN
    if base in _INTEGER_TYPES:
        return INTEGER
    if base in _NUMBER_TYPES:
        return NUMBER
    if base == "date":
        return DATE
    if base in _DATE_TIME_TYPES:
        return DATE_TIME
    return STRING


def property_schema(kind: str, *, nullable: bool = True) -> dict[str, t.Any]:
    """The JSON schema a column of this kind is emitted with."""
    null = ["null"] if nullable else []
    if kind == JSON:
        return {"type": ["object", "array", "string", "number", "boolean", *null]}
    if kind in {DATE, DATE_TIME}:
        return {"type": ["string", *null], "format": kind}
    if kind == ARRAY:
        return {"type": ["array", *null], "items": {}}
    return {"type": [kind, *null]}


def schema_of(columns: t.Mapping[str, str], required: t.Iterable[str] = ()) -> dict[str, t.Any]:
    """A stream's schema: its columns in order, each of its kind; `required` columns are never null."""
    never_null = set(required)
    return {"type": "object", "properties": {name: property_schema(kind, nullable=name not in never_null)
                                             for name, kind in columns.items()}}
