"""Which plan each stream syncs with: a cached plan, a sample, a first pass, or the catalog's types.

Discovery types each file once, from a sample when it is large (`sample.py`), and caches the
plan by the file's fingerprint, so that `meltano run` (discovery, then a sync with the catalog)
reads an unchanged file only once; a sync that read a whole sampled file caches the kinds it
ended with.
The catalog's stream description carries a stamp of the file state, columns, types and
keys it was discovered from. A sync with a catalog whose stamp matches the file takes the
catalog's types as they are; otherwise the file is planned again (cache or pass) and the
catalog's types are checked against its values: a type some value does not fit fails
the file before anything is emitted, naming file, line, column and value.
"""

from __future__ import annotations

import dataclasses
import re
import time
import typing as t

from tap_wiserock_csv.cache import fingerprint, plan_stamp
from tap_wiserock_csv.checks import RowCheck
from tap_wiserock_csv.errors import CsvInputError
from tap_wiserock_csv.kinds import kind_of_schema
from tap_wiserock_csv.layout import with_title_line_hint
from tap_wiserock_csv.plan import FilePlan, plan_file, read_checked
from tap_wiserock_csv.sample import sample_plan, samples
from tap_wiserock_csv.streams import METADATA_COLUMNS

if t.TYPE_CHECKING:
    import logging

    from singer_sdk.singerlib import Catalog, CatalogEntry

    from tap_wiserock_csv.cache import PlanCache
    from tap_wiserock_csv.plan import FileOptions

_STAMP = re.compile(r"\(plan ([0-9a-f]{16})\)")


def _fits_without_check(found: str, declared: str) -> bool:
    """Every value of kind `found` is also a value of kind `declared`."""
    return declared in {found, "string"} or (found, declared) == ("integer", "number")


class Planner:
    def __init__(self, cache: PlanCache, logger: logging.Logger, catalog: Catalog | None, *,
                 sample_bytes: int = 0) -> None:
        self.cache = cache
        self.logger = logger
        self.catalog = catalog
        self.sample_bytes = sample_bytes  # 0: every file is typed from every value before it is sent

    def stream_plan(self, options: FileOptions) -> tuple[FilePlan, str, FileOptions] | None:
        """(plan, stamp, options) for the file's stream; None for a file without a header."""
        entry = self.catalog.get_stream(options.stream) if self.catalog is not None else None
        file_fingerprint = fingerprint(options)
        if entry is None:
            plan = self._plan(options, file_fingerprint)
            return None if plan is None else (plan, plan_stamp(file_fingerprint, plan.columns, plan.kinds, plan.keys),
                                              options)
        columns, kinds, keys = _catalog_layout(entry, options.label)
        stamp = plan_stamp(file_fingerprint, columns, kinds, keys)
        from_catalog = FilePlan([], columns, kinds, keys, {})
        if stamp == _stamp_of(entry) or not _selected(entry):
            # The catalog describes the file as it is (or it is not synced).
            return self._as_discovered(from_catalog, options, file_fingerprint), stamp, options
        plan = self._plan(options, file_fingerprint)
        if plan is None:
            return None
        if plan.keys != keys:  # the catalog's keys win, as in the SDK: they get the first pass's checks
            options = dataclasses.replace(options, keys=tuple(keys))
            file_fingerprint = fingerprint(options)
            plan = self._plan(options, file_fingerprint)
            if plan is None:
                return None
        if plan.columns != columns:
            raise CsvInputError(f"{options.label}: the file's columns ({', '.join(plan.columns)}) differ from the "
                                f"catalog's ({', '.join(columns)}); re-run discovery")
        # A sampled plan's kinds hold for the sample only: every declared kind is checked then.
        unsure = {column: declared for column, found, declared in zip(columns, plan.kinds, kinds, strict=True)
                  if not _fits_without_check(found, declared) or (plan.sampled and declared != "string")}
        if unsure:  # fails on the first value that does not fit the catalog's type
            check = RowCheck(options.label, columns, keys, plan.forced, options.null_values, catalog=unsure)
            for _ in read_checked(options, columns, check):
                pass
        return dataclasses.replace(from_catalog, keys_checked=plan.keys_checked), \
            plan_stamp(file_fingerprint, columns, kinds, keys), options

    def _as_discovered(self, plan: FilePlan, options: FileOptions, file_fingerprint: str) -> FilePlan:
        """The catalog's kinds are discovery's: as sure as discovery was of them (its cached plan),
        else as sure as a discovery with these settings would be."""
        cached = self.cache.get(options, file_fingerprint)
        if cached is not None and (cached.columns, cached.kinds, cached.keys) == (plan.columns, plan.kinds, plan.keys):
            return dataclasses.replace(plan, sampled=cached.sampled, unseen=cached.unseen,
                                       keys_checked=cached.keys_checked)
        sampled = samples(options, self.sample_bytes)
        return dataclasses.replace(plan, sampled=sampled, keys_checked=not sampled)

    def _plan(self, options: FileOptions, file_fingerprint: str) -> FilePlan | None:
        sampled = samples(options, self.sample_bytes)
        plan = self.cache.get(options, file_fingerprint)
        if plan is not None and (sampled or not plan.sampled):  # a sample does not stand in for a first pass
            self.logger.info("Reusing the plan of %s: the file and its settings are unchanged.", options.label)
            return plan
        started = time.perf_counter()
        try:
            plan = sample_plan(options, self.sample_bytes, self.logger) if sampled else plan_file(options, self.logger)
        except CsvInputError as error:
            raise with_title_line_hint(error, options) from None
        if plan is None:
            return None
        self.cache.put(options, file_fingerprint, plan)
        if sampled:
            self.logger.info("Typed %s from a sample of %s (its start, its end and spans between) in %.1f s; the "
                             "sync checks every value.", options.label, _size(self.sample_bytes),
                             time.perf_counter() - started)
        else:
            self.logger.info("Typed %s from its content in %.1f s.", options.label, time.perf_counter() - started)
        return plan


def _size(count: int) -> str:
    return f"{count / 2**20:.0f} MB" if count >= 2**20 else f"{count / 2**10:.0f} KB" if count >= 2**10 else f"{count} bytes"


def _catalog_layout(entry: CatalogEntry, label: str) -> tuple[list[str], list[str], list[str]]:
    properties = (entry.schema.to_dict().get("properties") or {})
    columns = [name for name in properties if name not in METADATA_COLUMNS]
    kinds = []
    for column in columns:
        kind = kind_of_schema(properties[column])
        if kind is None:
            raise CsvInputError(f"{label}: the catalog gives column {column!r} the type {properties[column]!r}, which "
                                "this tap does not emit; use boolean, integer, number, string, or string with format "
                                "date or date-time")
        kinds.append(kind)
    root = entry.metadata.get(())
    keys = list(entry.key_properties or getattr(root, "table_key_properties", None) or [])
    return columns, kinds, keys


def _stamp_of(entry: CatalogEntry) -> str | None:
    match = _STAMP.search(entry.schema.description or "")
    return match[1] if match else None


def _selected(entry: CatalogEntry) -> bool:
    return entry.metadata.resolve_selection().get((), True)
