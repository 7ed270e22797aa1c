"""The relations the taps send with their streams, recorded with the tables they describe.

The project's taps add to every SCHEMA message the stream's references, a field other targets
ignore: `"references": [{"property": "author_id", "parent": "stg_wiserock_user",
"parent_property": "id"}]` (the column author_id of this stream holds values of the column id of
the stream stg_wiserock_user). At the commit, in the run's transaction, the loader writes them
as tables and columns into `<schema>._loader_relations`: the rows of every table the run loaded
are replaced by that run's relations of it. So the table holds, for each staging table, the
relations of its last committed load, and a report reads the relations of exactly the data it
checks. A stream whose SCHEMA carries no `references` has none. A reference the loader cannot
read is logged and left out: it never fails a load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import typing as t

import psycopg
from psycopg import sql

from target_wiserock_postgres import names
from target_wiserock_postgres.errors import LoadError, shorten

if t.TYPE_CHECKING:
    from target_wiserock_postgres.sinks import StreamLoad

RELATIONS_TABLE = "_loader_relations"
MESSAGE_FIELD = "references"
_WIRE_KEYS = ("property", "parent", "parent_property")

logger = logging.getLogger("target-wiserock-postgres")


@dataclasses.dataclass(frozen=True)
class StreamReference:
    """`property` of a stream holds values of `parent_property` of the stream `parent`."""

    property: str
    parent: str
    parent_property: str


def read_references(stream: str, value: t.Any) -> list[StreamReference] | None:
    """A SCHEMA message's references; None when it has none, or none the loader can read (logged)."""
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(item, dict) and all(isinstance(item.get(key), str) for key in _WIRE_KEYS)
                                       for item in value):
        return [StreamReference(*(item[key] for key in _WIRE_KEYS)) for item in value]
    logger.warning("stream %r: its SCHEMA's references are not a list of {%s} (got %s); its relations are not recorded",
                   stream, ", ".join(_WIRE_KEYS), shorten(value))
    return None


def record(connection: psycopg.Connection, schema: str, loads: t.Mapping[str, StreamLoad],
           references: t.Mapping[str, list[StreamReference]]) -> int:
    """Replace the recorded relations of the run's tables with the run's; returns how many were recorded.
    Nothing is created when no stream sent any and none were recorded before."""
    rows = [row for stream, found in references.items() for row in _rows(loads[stream], found, loads)]
    table = sql.Identifier(schema, RELATIONS_TABLE)
    if not references and not connection.execute("select to_regclass(%s)", (table.as_string(connection),)).fetchone()[0]:
        return 0
    create(connection, schema)
    connection.execute(sql.SQL("delete from {} where child_table = any(%s)").format(table),
                       ([load.table for load in loads.values()],))
    with connection.cursor() as cursor:
        cursor.executemany(sql.SQL("insert into {} (child_table, child_column, parent_table, parent_column) "
                                   "values (%s, %s, %s, %s) on conflict do nothing").format(table), rows)
    return len(rows)


def _rows(load: StreamLoad, found: list[StreamReference], loads: t.Mapping[str, StreamLoad]) -> t.Iterator[tuple[str, ...]]:
    """(child table, column, parent table, column) per reference, named as the loader names tables and
    columns (the parent's too when it is not in this run: a stream name or property over 63 bytes is shortened)."""
    for reference in found:
        column = load.column_of.get(reference.property)
        if column is None:
            logger.warning("stream %r: a reference names property %r, which its SCHEMA lacks; not recorded",
                           load.stream, reference.property)
            continue
        parent = loads.get(reference.parent)
        try:
            parent_table = parent.table if parent else names.table_name(reference.parent)
        except LoadError as exc:
            logger.warning("stream %r: a reference's parent cannot be a table (%s); not recorded", load.stream, exc)
            continue
        parent_column = (parent.column_of.get(reference.parent_property) if parent else None) or \
            names.short_name(reference.parent_property)
        yield load.table, column, parent_table, parent_column


def create(connection: psycopg.Connection, schema: str) -> None:
    """Create the table when missing. Another run creating it at the same time (two loads into one
    schema on two workers): ours waits for that run's transaction and is undone to its savepoint
    when that run committed it."""
    table = sql.Identifier(schema, RELATIONS_TABLE)
    with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable), connection.transaction():
        connection.execute(sql.SQL(
            "create table if not exists {} (child_table text not null, child_column text not null, "
            "parent_table text not null, parent_column text not null, "
            "loaded_at timestamptz not null default now(), "
            "primary key (child_table, child_column, parent_table, parent_column))").format(table))
