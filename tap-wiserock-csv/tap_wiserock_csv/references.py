"""References: a column of one stream holding the key of another (a relation, child -> parent).

They come from a `files` entry's `references` (`{"customer_id": "customers.id"}`: the column
customer_id holds values of the column id of the stream customers). They order the streams
(parents first) and travel with them, in two places a standard Singer target ignores:

- the catalog: each stream's root metadata (breadcrumb `[]`) lists them under `references`,
  parents named by their stream (tap_stream_id);
- every SCHEMA message: a `references` field, parents named by the stream they are written
  under (after the stream maps, e.g. `stg_wiserock_csv_customers`); target-wiserock-postgres
  records them with the tables it loads, for the run's orphan checks.

Each entry is `{"property": "customer_id", "parent": "customers", "parent_property": "id"}`.
The same module as tap-wiserock-api's (each tap is installed on its own).
"""

from __future__ import annotations

import dataclasses
import typing as t

from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import SchemaMessage

if t.TYPE_CHECKING:
    from singer_sdk.mapper import PluginMapper, StreamMap

CATALOG_KEY = "references"  # in a stream's root metadata
MESSAGE_FIELD = "references"  # in a SCHEMA message
Wire = dict[str, str]


@dataclasses.dataclass(frozen=True)
class Reference:
    """`column` of the stream holds values of `parent_column` of the stream `parent`."""

    column: str
    parent: str
    parent_column: str

    @classmethod
    def parse(cls, column: t.Any, target: t.Any) -> Reference | None:
        """From a setting's `"column": "table.column"` (split at the last dot); None when malformed."""
        if not isinstance(column, str) or not column or not isinstance(target, str):
            return None
        parent, dot, parent_column = target.rpartition(".")
        return cls(column, parent, parent_column) if dot and parent and parent_column else None

    def __str__(self) -> str:
        return f"{self.column} -> {self.parent}.{self.parent_column}"

    def wire(self, parent: str | None = None) -> Wire:
        return {"property": self.column, "parent": parent or self.parent, "parent_property": self.parent_column}


@dataclasses.dataclass(slots=True)
class ReferencingSchemaMessage(SchemaMessage):
    """A SCHEMA message with the stream's references (a field standard targets ignore)."""

    references: list[Wire] | None = None


def with_references(catalog: dict[str, t.Any], references: t.Mapping[str, t.Sequence[Reference]]) -> dict[str, t.Any]:
    """The catalog (a dict, as `--discover` prints it) with each stream's references in its root metadata."""
    for entry in catalog.get("streams", []):
        found = references.get(entry.get("tap_stream_id"), ())
        root = next((item for item in entry.setdefault("metadata", []) if item.get("breadcrumb") == []), None)
        if root is None:
            root = {"breadcrumb": [], "metadata": {}}
            entry["metadata"].append(root)
        root["metadata"][CATALOG_KEY] = [reference.wire() for reference in found]
    return catalog


def sent(references: t.Iterable[Reference], stream_map: StreamMap, mapper: PluginMapper) -> list[Wire]:
    """The references as one output stream's SCHEMA message carries them: each parent named by the
    stream it is written under; a reference whose column a stream map removed, or whose parent is
    not written, is left out."""
    found = []
    columns = stream_map.transformed_schema.get("properties") or {}
    for reference in references:
        parent = _written_as(mapper, reference.parent, reference.parent_column)
        if reference.column in columns and parent is not None:
            found.append(reference.wire(parent))
    return found


def _written_as(mapper: PluginMapper, stream: str, column: str) -> str | None:
    for stream_map in mapper.stream_maps.get(stream, []):
        if not isinstance(stream_map, RemoveRecordTransform) and column in (
                stream_map.transformed_schema.get("properties") or {}):
            return stream_map.stream_alias
    return None


def referencing(message: SchemaMessage, references: list[Wire]) -> ReferencingSchemaMessage:
    return ReferencingSchemaMessage(message.stream, message.schema, message.key_properties, message.bookmark_properties,
                                    references=references)
