"""Which staging tables each extractor writes, from its settings in meltano.yml.

- tap-wiserock-csv: one stream per `*.csv` file of `data_dir` (a `files` entry's `stream`, else the
  file stem under the tap's own naming rule), keys from the `files` entry;
- tap-wiserock-api: its `tables` setting, else the tap's default tables;
- any other extractor with a committed catalog (`catalog:` in meltano.yml): that catalog's streams.

Table names are stream names under the `'*'` stream map's alias, e.g. `'stg_wiserock_' + __stream_name__`.
Parents come from the `parents` of the API's tables and from elt.report.RELATIONS.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import typing as t

from elt.report import RELATIONS, Relation
from tap_wiserock_api.errors import SettingError
from tap_wiserock_api.tables import DEFAULT_TABLES, parse_tables
from tap_wiserock_api.tables import parents_first as names_parents_first
from tap_wiserock_csv.naming import snake_name

if t.TYPE_CHECKING:
    from wiserock_dagster.project import MeltanoProject, Plugin

_PREFIX_ALIAS = re.compile(r"""^\s*(['"])([^'"]*)\1\s*\+\s*__stream_name__\s*$""")


class UnknownTables(Exception):
    """The tables of an extractor cannot be told from meltano.yml: one line saying why."""


@dataclasses.dataclass(frozen=True)
class StagingTable:
    name: str
    extractor: str
    keys: tuple[str, ...] | None  # as configured; None: whatever the tap picks
    parents: tuple[str, ...]
    source: str  # where the rows come from, for the asset's description

    def relations(self) -> list[Relation]:
        """The orphan checks of this table: the known foreign keys where it is the child."""
        return [relation for relation in RELATIONS if relation.child == self.name]


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


def _csv_streams(project: MeltanoProject, plugin: Plugin) -> list[tuple[str, tuple[str, ...] | None, str]]:
    """(stream, keys, file) per CSV file, the way tap-wiserock-csv names them."""
    folder = pathlib.Path(plugin.setting("data_dir", project.env) or "data")
    folder = folder if folder.is_absolute() else project.root / folder
    if not folder.is_dir():
        raise UnknownTables(f"its data_dir {str(folder)!r} is not a folder")
    entries = {entry["path"]: entry for entry in _as_list(plugin.setting("files", project.env))}
    streams = []
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and path.suffix.lower() == ".csv") or path.stat().st_size == 0:
            continue  # the tap skips empty files too
        entry = entries.get(path.name, {})
        keys = entry.get("keys")
        streams.append((entry.get("stream") or snake_name(path.stem, 1), None if keys is None else tuple(keys), path.name))
    return streams


def _api_streams(project: MeltanoProject, plugin: Plugin) -> list[tuple[str, tuple[str, ...] | None, list[str]]]:
    """(table, keys, parents) per entry of the tap's `tables` setting, read and checked as the tap does."""
    try:
        tables = parse_tables(_as_list(plugin.setting("tables", project.env)) or DEFAULT_TABLES)
    except SettingError as exc:
        raise UnknownTables(str(exc)) from None
    return [(table.name, table.key, list(table.parents)) for table in tables]


def _catalog_streams(project: MeltanoProject, plugin: Plugin) -> list[tuple[str, tuple[str, ...] | None]]:
    catalog = plugin.definition.get("catalog")
    if not catalog:
        raise UnknownTables("Dagster knows its streams only from a committed catalog (catalog: in meltano.yml)")
    streams = json.loads((project.root / catalog).read_text(encoding="utf-8"))["streams"]
    return [(stream.get("stream") or stream["tap_stream_id"], tuple(stream.get("key_properties") or ()) or None)
            for stream in streams]


def staging_tables(project: MeltanoProject, extractor: str) -> list[StagingTable]:
    """The extractor's tables with their parents (tables of any source), parents first;
    UnknownTables says why they cannot be told."""
    plugin = project.plugins[extractor]
    prefix = table_prefix(plugin, project.env)
    if plugin.namespace == "tap_wiserock_csv":
        tables = [StagingTable(prefix + stream, extractor, keys, (), f"data file {file}")
                  for stream, keys, file in _csv_streams(project, plugin)]
    elif plugin.namespace == "tap_wiserock_api":
        tables = [StagingTable(prefix + stream, extractor, keys, tuple(prefix + parent for parent in parents),
                               f"API table {stream}")
                  for stream, keys, parents in _api_streams(project, plugin)]
    else:
        tables = [StagingTable(prefix + stream, extractor, keys, (), f"stream {stream}")
                  for stream, keys in _catalog_streams(project, plugin)]
    tables = [dataclasses.replace(table, parents=tuple(dict.fromkeys(
        [*table.parents, *(relation.parent for relation in table.relations())]))) for table in tables]
    return parents_first(tables)


def parents_first(tables: list[StagingTable]) -> list[StagingTable]:
    """Parents before their children (Dagster takes a step's results in that order), as the API tap
    orders its tables: the listed order otherwise, a cycle's tables last as listed."""
    by_name = {table.name: table for table in tables}
    ordered, _cycle = names_parents_first(list(by_name), {table.name: table.parents for table in tables})
    return [by_name[name] for name in ordered]
