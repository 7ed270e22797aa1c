"""The `tables` setting: which PostgREST tables and views to load, their schema, keys, forced
types, parents and references."""

from __future__ import annotations

import dataclasses
import typing as t

from tap_wiserock_api.errors import SettingError
from tap_wiserock_api.kinds import SETTING_KINDS
from tap_wiserock_api.references import Reference

DEFAULT_TABLES: list[dict[str, t.Any]] = [{"name": "user"}, {"name": "note", "parents": ["user"]}]
EXAMPLE = '[{"name": "event", "key": ["tenant", "seq"], "column_types": {"amount": "number"}, "parents": ["user"]}]'
# Every field a tables entry may have (the tap's config_jsonschema declares the same); any other is refused.
FIELDS = (
    "name",
    "schema",
    "key",
    "column_types",
    "parents",
    "references",
)


@dataclasses.dataclass(frozen=True)
class TableSetting:
    name: str
    key: tuple[str, ...] | None = None  # None: the description's primary key, else `id`
    column_types: dict[str, str] = dataclasses.field(default_factory=dict)
    parents: tuple[str, ...] = ()  # loaded first, with or without a column referencing them
    references: tuple[Reference, ...] = ()  # declared: each implies its parent
    schema: str | None = None  # the PostgREST schema (Accept-Profile); None: the tap's schema setting


def parse_tables(value: t.Any) -> list[TableSetting]:
    """The setting's entries, checked: fields known, names unique, kinds known, parents and
    referenced tables listed."""
    tables = [_entry(number, spec) for number, spec in enumerate(value or [], start=1)]
    names = [table.name for table in tables]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise SettingError(f"tables: {', '.join(map(repr, duplicates))} listed more than once (one name is one staging table, "
                           "even for tables of the same name in two schemas)")
    for table in tables:
        if unknown := [parent for parent in table.parents if parent not in names]:
            raise SettingError(f"tables: {table.name!r} names parents that are not in tables: {', '.join(map(repr, unknown))}")
        for reference in table.references:
            if reference.parent not in names:
                raise SettingError(f"tables entry {table.name!r}: references {reference}, but {reference.parent!r} is "
                                   f"not in tables (listed: {', '.join(map(repr, names))}); add it, or remove the "
                                   "reference")
    return tables


def _entry(number: int, spec: t.Any) -> TableSetting:
    where = f"tables entry {number}"
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise SettingError(f"{where}: expected an object with a table name, e.g. {EXAMPLE}")
    where = f"tables entry {spec['name']!r}"
    if unknown := [field for field in spec if field not in FIELDS]:
        raise SettingError(f"{where}: unknown field {', '.join(map(repr, unknown))} (the fields are: {', '.join(FIELDS)})")
    key = spec.get("key")
    if isinstance(key, str):
        key = [key]
    if key is not None and (not isinstance(key, list) or not key or not all(isinstance(k, str) and k for k in key)):
        raise SettingError(f"{where}: key must be a column name or a list of column names")
    types = spec.get("column_types") or {}
    if not isinstance(types, dict) or (bad := {c: k for c, k in types.items() if k not in SETTING_KINDS}):
        raise SettingError(f"{where}: column_types must map columns to one of {', '.join(SETTING_KINDS)}"
                           + (f", got {bad}" if isinstance(types, dict) else ""))
    parents = spec.get("parents") or []
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise SettingError(f"{where}: parents must be a list of table names")
    schema = spec.get("schema")
    if schema is not None and (not isinstance(schema, str) or not schema.strip()):
        raise SettingError(f"{where}: schema must be the name of a schema the API exposes, e.g. \"analytics\"")
    return TableSetting(spec["name"], tuple(key) if key else None, dict(types), tuple(parents),
                        _references(where, spec.get("references") or {}), schema.strip() if schema else None)


def _references(where: str, value: t.Any) -> tuple[Reference, ...]:
    """`{"author_id": "user.id"}`: the column author_id holds ids of the table user."""
    found = [Reference.parse(column, target) for column, target in value.items()] if isinstance(value, dict) else [None]
    if None in found:
        raise SettingError(f'{where}: references must map each column to "table.column" of the table it references, '
                           f'e.g. {{"author_id": "user.id"}}; got {value!r}')
    return tuple(t.cast("list[Reference]", found))


def parents_first(names: t.Sequence[str], parents: t.Mapping[str, t.Iterable[str]]) -> tuple[list[str], list[str]]:
    """`names` ordered so that each table comes after its parents (among `names`), keeping the
    listed order otherwise; and the tables of a cycle, if any (they keep their listed order)."""
    waiting = {name: {p for p in parents.get(name, ()) if p in names and p != name} for name in names}
    ordered: list[str] = []
    while waiting:
        ready = next((name for name in names if name in waiting and not waiting[name]), None)
        if ready is None:
            cycle = [name for name in names if name in waiting]
            return ordered + cycle, cycle
        ordered.append(ready)
        del waiting[ready]
        for pending in waiting.values():
            pending.discard(ready)
    return ordered, []
