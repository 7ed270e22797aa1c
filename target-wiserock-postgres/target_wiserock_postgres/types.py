"""JSON schema of a Singer property -> the PostgreSQL column that holds it."""

from __future__ import annotations

import dataclasses
import enum
import typing as t


class Kind(enum.Enum):
    """How a value reaches COPY: as it is, or JSON-encoded first."""

    PLAIN = "plain"  # the decoded value's text form is what the column parses
    JSON = "json"  # jsonb: the value is sent as JSON text
    TEXT_UNION = "text_union"  # text for a union of scalar types: non-strings sent as JSON text


@dataclasses.dataclass(frozen=True)
class ColumnType:
    """A column's PostgreSQL type, spelled as `format_type()` spells it, and how values reach it."""

    sql: str
    kind: Kind = Kind.PLAIN


BIGINT = ColumnType("bigint")
NUMERIC = ColumnType("numeric")
BOOLEAN = ColumnType("boolean")
DATE = ColumnType("date")
TIMESTAMPTZ = ColumnType("timestamp with time zone")
TEXT = ColumnType("text")
TEXT_UNION = ColumnType("text", Kind.TEXT_UNION)
JSONB = ColumnType("jsonb", Kind.JSON)

SCALARS = {"integer": BIGINT, "number": NUMERIC, "boolean": BOOLEAN}
STRING_FORMATS = {"date": DATE, "date-time": TIMESTAMPTZ}


def _variants(schema: t.Mapping[str, t.Any]) -> list[tuple[str, str | None]]:
    """(JSON type, string format) pairs a property allows, "null" left out; anyOf/oneOf flattened."""
    found: list[tuple[str, str | None]] = []
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key) or []:
            found += _variants(option)
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    if not types and not found and ("properties" in schema or "items" in schema):
        types = ["object" if "properties" in schema else "array"]
    found += [(name, schema.get("format") if name == "string" else None) for name in types if name != "null"]
    return found


def column_type(schema: t.Mapping[str, t.Any]) -> ColumnType:
    """integer -> bigint, number -> numeric, boolean, date, date-time -> timestamptz, string -> text,
    object/array -> jsonb; several non-null types -> jsonb if object/array is among them, else text.
    A property that declares no type at all may hold any JSON value: jsonb."""
    variants = list(dict.fromkeys(_variants(schema)))
    if not variants:
        return JSONB
    names = {name for name, _ in variants}
    if names & {"object", "array"}:
        return JSONB
    if len(names) > 1:
        return TEXT_UNION
    name = names.pop()
    if name == "string":
        formats = {fmt for _, fmt in variants}
        return STRING_FORMATS.get(formats.pop(), TEXT) if len(formats) == 1 else TEXT
    if name in SCALARS:
        return SCALARS[name]
    return TEXT_UNION
