"""Each load of a Meltano job as one multi-asset: an asset per staging table it writes, with checks.

The shape of dagster-sling's `sling_assets`: specs from the tool's configuration, one step that runs
the tool and yields a result per table. Assets are grouped by source (the extractor), and a table
depends on its parents (the tables its relations reference, the API's `parents`) when they are
assets too; each relation is an orphan check on the child.

Not `from __future__ import annotations` here: Dagster checks the step's `context` annotation as an object.
"""

import re
import typing as t

import dagster as dg
from dagster import AssetExecutionContext

from wiserock_dagster.project import Load
from wiserock_dagster.step import LoadStep
from wiserock_dagster.tables import StagingTable

KINDS = {"meltano", "postgres"}


def group_name(extractor: str) -> str:
    return re.sub(r"\W", "_", extractor)


def asset_spec(table: StagingTable, known: t.AbstractSet[str]) -> dg.AssetSpec:
    keys = ", ".join(table.keys) if table.keys else "the source's"
    return dg.AssetSpec(
        key=table.name, group_name=group_name(table.extractor), kinds=KINDS, skippable=True,
        deps=[parent for parent in table.parents if parent in known and parent != table.name],
        description=f"Staging table {table.name}: {table.source}, loaded by {table.extractor}. Key: {keys}.",
        metadata={"source": table.source, "extractor": table.extractor})


def check_specs(table: StagingTable, known: t.AbstractSet[str]) -> list[dg.AssetCheckSpec]:
    checks = [dg.AssetCheckSpec("primary_key", asset=table.name,
                                description="The table has a primary key (unique, not null), the configured one if any")]
    checks += [dg.AssetCheckSpec(name, asset=table.name,
                                 additional_deps=[relation.parent] if relation.parent in known else [],
                                 description=f"No orphans: every {relation.column} that is not null is a "
                                             f"{relation.key} of {relation.parent}")
               for relation, name in table.check_names().items()]
    return checks


def load_assets(load: Load, tables: t.Sequence[StagingTable], known: t.AbstractSet[str]) -> dg.AssetsDefinition:
    """The multi-asset of one `meltano run <extractor> <loader>`."""

    @dg.multi_asset(
        name=load.name,
        specs=[asset_spec(table, known) for table in tables],
        check_specs=[check for table in tables for check in check_specs(table, known)],
        description=f"meltano run {' '.join(load.args)}",
        op_tags={"meltano/extractor": load.extractor, "meltano/loader": load.loader},
    )
    def _load(context: AssetExecutionContext) -> t.Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        yield from LoadStep(context, load, tables).run()

    return _load
