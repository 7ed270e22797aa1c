"""The `files` setting's entries: their fields, and the references between the streams they name.

A reference, `"references": {"customer_id": "customers.id"}` in the entry of `Orders.csv`, says
that the column customer_id of its stream holds values of the column id of the stream customers
(column names as the tap names them). The parent is then emitted before the child.
"""

from __future__ import annotations

import typing as t

from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.references import Reference

# Every field a files entry may have (the tap's config_jsonschema declares the same); any other is refused.
FIELDS = (
    "path",
    "stream",
    "keys",
    "column_types",
    "delimiter",
    "null_values",
    "duplicate_headers",
    "skip_lines",
    "header",
    "references",
)


def check_fields(entry: t.Mapping[str, t.Any]) -> None:
    if unknown := [field for field in entry if field not in FIELDS]:
        raise CsvInputError(f"files entry {entry.get('path')!r}: unknown field {', '.join(map(repr, unknown))} "
                            f"(the fields are: {', '.join(FIELDS)})")


def entry_references(entry: t.Mapping[str, t.Any]) -> tuple[Reference, ...]:
    value = entry.get("references") or {}
    found = [Reference.parse(column, target) for column, target in value.items()] if isinstance(value, dict) else [None]
    if None in found:
        raise CsvInputError(f'files entry {entry.get("path")!r}: references must map each column to "stream.column" '
                            f'of the stream it references, e.g. {{"customer_id": "customers.id"}}; got {value!r}')
    return tuple(t.cast("list[Reference]", found))


def check_references(path: str, stream: str, references: t.Iterable[Reference],
                     columns: t.Mapping[str, t.Sequence[str]]) -> None:
    """Each reference names a column of its stream, and a stream of this run and one of its columns
    (`columns`: each stream's columns)."""
    for reference in references:
        where = f"files entry {path!r}: references {reference}, but"
        if reference.column not in columns[stream]:
            raise CsvInputError(f"{where} stream {stream!r} has no such column (its columns: {', '.join(columns[stream])})")
        if reference.parent not in columns:
            raise CsvInputError(f"{where} no file makes a stream named {reference.parent!r} (the streams: "
                                f"{', '.join(columns)})")
        if reference.parent_column not in columns[reference.parent]:
            raise CsvInputError(f"{where} stream {reference.parent!r} has no column {reference.parent_column!r} (its "
                                f"columns: {', '.join(columns[reference.parent])})")


def parents_first(names: t.Sequence[str], parents: t.Mapping[str, t.Iterable[str]]) -> list[str]:
    """`names` with each after its parents, otherwise in the listed order (a cycle's streams last, as listed)."""
    waiting = {name: {parent for parent in parents.get(name, ()) if parent in names and parent != name} for name in names}
    ordered: list[str] = []
    while (ready := next((name for name in names if name in waiting and not waiting[name]), None)) is not None:
        ordered.append(ready)
        del waiting[ready]
        for pending in waiting.values():
            pending.discard(ready)
    return ordered + [name for name in names if name in waiting]
