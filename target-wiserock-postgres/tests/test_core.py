"""singer-sdk's standard target tests, each in its own schema, with the snapshot semantics set
for taps that send no ACTIVATE_VERSION (the SDK's test streams send none)."""

from __future__ import annotations

import pytest
from singer_sdk.testing import SuiteConfig, get_target_test_class
from singer_sdk.testing.runners import TargetTestRunner

from target_wiserock_postgres.errors import LoadError
from target_wiserock_postgres.target import TargetWiseRockPostgres
from tests.conftest import Warehouse, load, record, schema

StandardTests = get_target_test_class(
    target_class=TargetWiseRockPostgres,
    config={"default_target_schema": "replaced_per_test"},
    suite_config=SuiteConfig(),
)


class TestTargetWiseRockPostgres(StandardTests):  # type: ignore[misc, valid-type]
    @pytest.fixture
    def runner(self, warehouse: Warehouse) -> TargetTestRunner:
        """The SDK's runner, pointed at this test's schema."""
        return TargetTestRunner(target_class=TargetWiseRockPostgres, parse_env_config=False,
                                config={**warehouse.config, "complete_streams_at_end_of_input": True})

    def test_target_duplicate_records(self, warehouse: Warehouse) -> None:  # type: ignore[override]
        """Replaces the SDK's duplicate_records test, which expects the last record of a key to win.
        Here a snapshot holds each key once: a duplicate ends the run, naming the key, and the
        table keeps its previous rows."""
        stream = "test_duplicate_records"
        load(warehouse, [schema(stream, id="integer", metric="integer"), record(stream, id=1, metric=1)],
             complete_streams_at_end_of_input=True)
        with pytest.raises(LoadError, match=r"table test_duplicate_records: duplicate key \(id\)=\(2\)"):
            load(warehouse, [schema(stream, id="integer", metric="integer"), record(stream, id=2, metric=2),
                             record(stream, id=1, metric=10), record(stream, id=2, metric=20)],
                 complete_streams_at_end_of_input=True)
        assert warehouse.rows(stream) == [(1, 1)]
