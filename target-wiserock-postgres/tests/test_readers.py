"""Contract 3: during a load, queries on the staging tables run and see the previous snapshot;
after the commit they see the new one, never a mix; views on staging tables keep working."""

from __future__ import annotations

from tests.conftest import finish, load, record, schema, send, snapshot, start, wait_for_copy

OLD = [*snapshot("orders", [{"id": n, "total": 1} for n in range(1, 101)], id="integer", total="number"),
       *snapshot("items", [{"id": n, "order_id": n} for n in range(1, 101)], id="integer", order_id="integer")]


def totals(warehouse, connection=None) -> tuple:
    statement = "select (select count(*) || '/' || sum(total) from orders), (select count(*) from items)"
    if connection is not None:
        return connection.execute(statement).fetchone()
    return warehouse.query(statement)[0]


def test_readers_see_the_previous_snapshot_until_the_commit(warehouse):
    load(warehouse, OLD)
    process = start(warehouse)
    new_orders = [schema("orders", id="integer", total="number"),
                  *(record("orders", id=n, total=2) for n in range(50, 30_000)), {"type": "ACTIVATE_VERSION",
                                                                                    "stream": "orders", "version": 2}]
    send(process, [*new_orders, schema("items", id="integer", order_id="integer"),
                   *(record("items", id=n, order_id=n) for n in range(50, 20_000))])
    wait_for_copy(warehouse)
    # A reader that would wait for a lock fails within a second instead of hanging the test.
    with warehouse.connect(autocommit=True) as reader:
        reader.execute("set statement_timeout = 1000")
        assert totals(warehouse, reader) == ("100/100", 100)
        send(process, [{"type": "ACTIVATE_VERSION", "stream": "items", "version": 2}])
        result = finish(process)
        assert result.returncode == 0, result.stderr[-2000:]
        assert totals(warehouse, reader) == (f"{30_000 - 50}/{2 * (30_000 - 50)}", 20_000 - 50)


def test_a_view_on_a_staging_table_survives_loads(warehouse):
    load(warehouse, OLD)
    warehouse.query("create view big_orders as select id, total from orders where total > 1")
    load(warehouse, snapshot("orders", [{"id": 1, "total": 5, "note": "new column"}, {"id": 2, "total": 1}],
                             id="integer", total="number", note="string"))
    assert warehouse.query("select id, total::int from big_orders") == [(1, 5)]
    load(warehouse, snapshot("orders", [{"id": 3, "total": 7}], id="integer", total="number"))
    assert warehouse.query("select id, total::int from big_orders") == [(3, 7)]
