"""Which staging tables each extractor writes, and their relations, from its settings in meltano.yml.

- tap-wiserock-csv: one stream per `*.csv` file of `data_dir` (a `files` entry's `stream`, else the
  file stem under the tap's own naming rule), keys and references from the `files` entry;
- tap-wiserock-api: its `tables` setting, else the tap's default tables; references from the tap's
  own discovery (the API's foreign keys and the setting's references, discovery.py), else from the
  setting alone;
- any other extractor with a committed catalog (`catalog:` in meltano.yml): that catalog's streams,
  with the references its root metadata lists, if any.

Table names are stream names under the `'*'` stream map's alias, e.g. `'stg_wiserock_' + __stream_name__`.
A table's parents are the tables its relations reference, and the API's `parents`: the same
knowledge that orders the taps' streams. Nothing here names a table or column of the sample.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import typing as t

from elt.report import Relation
from tap_wiserock_api.errors import SettingError
from tap_wiserock_api.tables import DEFAULT_TABLES, parse_tables
from tap_wiserock_api.tables import parents_first as names_parents_first
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.files import check_fields, entry_references
from tap_wiserock_csv.naming import snake_name
from wiserock_dagster.discovery import DISCOVERY_SETTINGS, Discoveries, Found, references_in

if t.TYPE_CHECKING:
    from wiserock_dagster.project import MeltanoProject, Plugin

_PREFIX_ALIAS = re.compile(r"""^\s*(['"])([^'"]*)\1\s*\+\s*__stream_name__\s*$""")
_NOT_A_NAME = re.compile(r"\W")


class UnknownTables(Exception):
    """The tables of an extractor cannot be told from meltano.yml: one line saying why."""


@dataclasses.dataclass(frozen=True)
class Stream:
    """A stream of an extractor as its settings (and discovery) tell it, before the table prefix."""

    name: str
    keys: tuple[str, ...] | None
    source: str
    parents: tuple[str, ...] = ()
    references: tuple[tuple[str, str, str], ...] = ()  # (column, parent stream, parent column)


@dataclasses.dataclass(frozen=True)
class StagingTable:
    name: str
    extractor: str
    keys: tuple[str, ...] | None  # as configured; None: whatever the tap picks
    parents: tuple[str, ...]
    source: str  # where the rows come from, for the asset's description
    relations: tuple[Relation, ...] = ()  # where it is the child: one orphan check each

    def check_names(self) -> dict[Relation, str]:
        """Each relation's asset check: `no_orphan_<column>` (with the parent where one column has several)."""
        names = {}
        for relation in self.relations:
            several = sum(other.column == relation.column for other in self.relations) > 1
            names[relation] = _NOT_A_NAME.sub("_", f"no_orphan_{relation.column}" + (f"_{relation.parent}" if several else ""))
        return names


def table_prefix(plugin: Plugin, env: t.Mapping[str, str]) -> str:
    """The prefix the `'*'` stream map's alias puts before each stream name ('' without a map)."""
    maps = plugin.setting("stream_maps", env) or {}
    if isinstance(maps, str):
        maps = json.loads(maps)
    alias = (maps.get("*") or {}).get("__alias__")
    if alias is None:
        return ""
    match = _PREFIX_ALIAS.match(str(alias))
    if not match:
        raise UnknownTables(f"its stream map alias {alias!r} is not of the form 'prefix' + __stream_name__")
    return match[2]


def _as_list(value: t.Any) -> list[t.Any]:
    if isinstance(value, str):
        value = json.loads(value) if value.lstrip().startswith("[") else [value]
    return list(value or [])


def _csv_streams(project: MeltanoProject, plugin: Plugin) -> list[Stream]:
    """One per CSV file, named, keyed and referencing as tap-wiserock-csv does (its entries checked by its rules)."""
    folder = pathlib.Path(plugin.setting("data_dir", project.env) or "data")
    folder = folder if folder.is_absolute() else project.root / folder
    if not folder.is_dir():
        raise UnknownTables(f"its data_dir {str(folder)!r} is not a folder")
    entries = {entry["path"]: entry for entry in _as_list(plugin.setting("files", project.env))}
    streams = []
    try:
        for entry in entries.values():
            check_fields(entry)
        for path in sorted(folder.iterdir()):
            if not (path.is_file() and path.suffix.lower() == ".csv") or path.stat().st_size == 0:
                continue  # the tap skips empty files too
            entry = entries.get(path.name, {})
            keys = entry.get("keys")
            references = tuple((ref.column, ref.parent, ref.parent_column) for ref in entry_references(entry))
            streams.append(Stream(entry.get("stream") or snake_name(path.stem, 1), None if keys is None else tuple(keys),
                                  f"data file {path.name}", references=references))
    except CsvInputError as exc:
        raise UnknownTables(str(exc)) from None
    names = [stream.name for stream in streams]
    for stream in streams:
        for column, parent, key in stream.references:
            if parent not in names:  # the tap's own words
                raise UnknownTables(f"files entry {stream.source.removeprefix('data file ')!r}: references {column} -> "
                                    f"{parent}.{key}, but no file makes a stream named {parent!r} (the streams: "
                                    f"{', '.join(names)})")
    return streams


def _api_streams(project: MeltanoProject, plugin: Plugin, discoveries: Discoveries) -> list[Stream]:
    """Per entry of the tap's `tables` setting, read and checked as the tap does, with the references
    its discovery found (the API's foreign keys too), else the setting's."""
    setting = _as_list(plugin.setting("tables", project.env)) or DEFAULT_TABLES
    try:
        tables = parse_tables(setting)
    except SettingError as exc:
        raise UnknownTables(str(exc)) from None
    config = {name: value for name in DISCOVERY_SETTINGS
              if (value := setting if name == "tables" else plugin.setting(name, project.env)) not in (None, "")}
    found: Found = discoveries.api(plugin.name, config) or {
        table.name: [(ref.column, ref.parent, ref.parent_column) for ref in table.references] for table in tables}
    return [Stream(table.name, table.key, f"API table {table.name}", table.parents, tuple(found.get(table.name, ())))
            for table in tables]


def _catalog_streams(project: MeltanoProject, plugin: Plugin) -> list[Stream]:
    catalog_file = plugin.definition.get("catalog")
    if not catalog_file:
        raise UnknownTables("Dagster knows its streams only from a committed catalog (catalog: in meltano.yml)")
    catalog = json.loads((project.root / catalog_file).read_text(encoding="utf-8"))
    found = references_in(catalog)
    streams = []
    for entry in catalog["streams"]:
        name = entry.get("stream") or entry["tap_stream_id"]
        streams.append(Stream(name, tuple(entry.get("key_properties") or ()) or None, f"stream {name}",
                              references=tuple(found.get(entry.get("tap_stream_id") or name, ()))))
    return streams


def staging_tables(project: MeltanoProject, extractor: str, discoveries: Discoveries) -> list[StagingTable]:
    """The extractor's tables with their relations and parents, parents first; UnknownTables says why
    they cannot be told."""
    plugin = project.plugins[extractor]
    prefix = table_prefix(plugin, project.env)
    if plugin.namespace == "tap_wiserock_csv":
        streams = _csv_streams(project, plugin)
    elif plugin.namespace == "tap_wiserock_api":
        streams = _api_streams(project, plugin, discoveries)
    else:
        streams = _catalog_streams(project, plugin)
    tables = []
    for stream in streams:
        relations = tuple(Relation(prefix + stream.name, column, prefix + parent, key)
                          for column, parent, key in stream.references)
        parents = tuple(dict.fromkeys([*(prefix + parent for parent in stream.parents),
                                       *(relation.parent for relation in relations)]))
        tables.append(StagingTable(prefix + stream.name, extractor, stream.keys, parents, stream.source, relations))
    return parents_first(tables)


def parents_first(tables: list[StagingTable]) -> list[StagingTable]:
    """Parents before their children (Dagster takes a step's results in that order), as the API tap
    orders its tables: the listed order otherwise, a cycle's tables last as listed."""
    by_name = {table.name: table for table in tables}
    ordered, _cycle = names_parents_first(list(by_name), {table.name: table.parents for table in tables})
    return [by_name[name] for name in ordered]
