"""What PostgREST's OpenAPI description (`GET /rest/v1/`) says about a table.

PostgREST describes each table and view as a definition: its columns as properties, each
with its PostgreSQL type as `format`; `required` lists the NOT NULL columns; a column's
description carries `<pk/>` when it is part of the primary key and
`<fk table='user' column='id'/>` when it references another table (single-column foreign
keys only; a view's column passing a foreign-key column through carries the table's note).
On Supabase's platform the description answers only to the service-role or a
secret key; with the anon key it is refused (403).
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from tap_wiserock_api.kinds import kind_of_format
from tap_wiserock_api.references import Reference

_FOREIGN_KEY = re.compile(r"<fk table='(?P<table>[^']*)' column='(?P<column>[^']*)'/>")


@dataclasses.dataclass(frozen=True)
class TableDescription:
    columns: dict[str, str]  # name -> kind, in the description's order
    formats: dict[str, str]  # name -> PostgreSQL type
    required: frozenset[str]
    primary_key: tuple[str, ...]
    references: tuple[Reference, ...]  # its foreign keys


def describe_tables(document: t.Any) -> dict[str, TableDescription] | None:
    """Each table's description, or None when the document is not PostgREST's OpenAPI."""
    definitions = document.get("definitions") if isinstance(document, dict) else None
    if not isinstance(definitions, dict):
        return None
    tables = {}
    for name, definition in definitions.items():
        properties = definition.get("properties") if isinstance(definition, dict) else None
        if not isinstance(properties, dict):
            continue
        formats = {column: str(prop.get("format") or prop.get("type") or "json") for column, prop in properties.items()}
        notes = {column: str(prop.get("description") or "") for column, prop in properties.items()}
        references = [Reference(column, match["table"], match["column"])
                      for column, note in notes.items() for match in _FOREIGN_KEY.finditer(note)]
        tables[name] = TableDescription(
            columns={column: kind_of_format(pg_type) for column, pg_type in formats.items()},
            formats=formats,
            required=frozenset(definition.get("required") or ()),
            primary_key=tuple(column for column, note in notes.items() if "<pk/>" in note),
            references=tuple(references),
        )
    return tables
