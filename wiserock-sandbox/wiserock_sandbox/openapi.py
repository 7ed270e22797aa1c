"""The OpenAPI (Swagger 2.0) description PostgREST serves at its root, `GET /rest/v1/`.

Built as PostgREST's Response/OpenAPI.hs builds it: one definition per table, each column a
property with the PostgreSQL type as `format`, a JSON type (none for json/jsonb, `array` with
`items` for arrays), `required` listing the NOT NULL columns, and in the description the
markers `<pk/>` for primary-key columns and `<fk table='t' column='c'/>` for single-column
foreign keys.
"""

from __future__ import annotations

import typing as t

from wiserock_sandbox.schema import INTEGER_TYPES, JSON_TYPES, NUMBER_TYPES, Column, TableDef

STRING_TYPES = frozenset({"character varying", "character", "text"})


def _swagger_type(pg_type: str) -> str | None:
    """PostgREST's toSwaggerType: json and jsonb have no type; arrays are arrays; the rest strings."""
    if pg_type in JSON_TYPES:
        return None
    if pg_type == "boolean":
        return "boolean"
    if pg_type in INTEGER_TYPES:
        return "integer"
    if pg_type in NUMBER_TYPES:
        return "number"
    if pg_type.endswith("[]"):
        return "array"
    return "string"


def _property(column: Column) -> dict[str, t.Any]:
    notes = ["Note:"]
    if column.primary_key:
        notes.append("This is a Primary Key.<pk/>")
    if column.references:
        table, _, key = column.references.partition(".")
        notes.append(f"This is a Foreign Key to `{table}.{key}`.<fk table='{table}' column='{key}'/>")
    schema: dict[str, t.Any] = {"format": column.type}
    if len(notes) > 1:
        schema["description"] = "\n".join(notes)
    kind = _swagger_type(column.base_type)
    if kind is not None:
        schema["type"] = kind
    if kind == "array":
        item = _swagger_type(column.base_type[:-2])
        schema["items"] = {"type": item} if item else {}
    return schema


def _definition(table: TableDef) -> dict[str, t.Any]:
    definition: dict[str, t.Any] = {"type": "object",
                                    "properties": {column.name: _property(column) for column in table.columns}}
    required = [column.name for column in table.columns if not column.nullable]
    if required:
        definition["required"] = required
    return definition


def describe(tables: t.Iterable[TableDef], host: str) -> dict[str, t.Any]:
    """The root document for these tables, as PostgREST 12 writes it (the parts a client reads)."""
    tables = list(tables)
    paths: dict[str, t.Any] = {"/": {"get": {"tags": ["Introspection"], "summary": "OpenAPI description (this document)",
                                             "produces": ["application/openapi+json", "application/json"],
                                             "responses": {"200": {"description": "OK"}}}}}
    for table in tables:
        paths[f"/{table.name}"] = {"get": {"tags": [table.name], "responses": {
            "200": {"description": "OK", "schema": {"type": "array", "items": {"$ref": f"#/definitions/{table.name}"}}},
            "206": {"description": "Partial Content"}}}}
    return {
        "swagger": "2.0",
        "info": {"title": "standard public schema", "description": "", "version": "12.2.3"},
        "host": host,
        "basePath": "/",
        "schemes": ["http"],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": {table.name: _definition(table) for table in tables},
    }
