"""Every orderable key is read as several key ranges at once: each row exactly once, in key
order, with the types from the description (service-role key) and from the rows (anon key and
a login), also while rows come and go, under a row cap below page_size, and when the server
pushes back (429/503 lower the requests in flight)."""

from __future__ import annotations

import datetime as dt
import decimal
import random
import uuid

import pytest

from tap_wiserock_api.errors import SourceShapeError
from tap_wiserock_api.keyset import Keyset
from tap_wiserock_api.kinds import DATE_TIME, STRING
from tests.conftest import expected_record, run_tap, tap_config
from wiserock_sandbox import SANDBOX_SERVICE_KEY, Column, TableDef
from wiserock_sandbox.schema import sort_key

MODES = {"rows": {}, "description": {"api_key": SANDBOX_SERVICE_KEY, "email": "", "password": ""}}
ROWS = 600
PAGE = 20  # 30 pages: the table is cut into about 8 ranges
AWKWARD = ['a+b', 'a;b', 'a,b', 'say "hi"', 'back\\slash', '(paren)', 'x)', 'é', 'E', 'e', 'ß', '日本', 'a b', '%20', '&x=1']


def _text(rng: random.Random, n: int) -> str:
    return f"{rng.choice(AWKWARD)}{rng.choice(['', 'Z', 'z'])}{n}{rng.choice(AWKWARD)}"


def _v7(rng: random.Random, n: int) -> str:
    millis = 1_700_000_000_000 + n * 1000 + rng.randrange(1000)
    return str(uuid.UUID(int=(millis << 80) | (0x7 << 76) | rng.getrandbits(76)))


def _instant(rng: random.Random, n: int) -> str:
    moment = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=n * 5000,
                                                                            microseconds=rng.choice([0, 120000, 123456]))
    return moment.isoformat()


# kind -> (the key column's type, a distinct key value for row n)
KEYS = {
    "bigint": ("bigint", lambda rng, n: n * 1000 + rng.randrange(1000) - 300_000),
    "numeric": ("numeric", lambda rng, n: decimal.Decimal(n * 1000 + rng.randrange(1000)).scaleb(-3) - 100),
    "uuid-v4": ("uuid", lambda rng, _: str(uuid.UUID(int=rng.getrandbits(128), version=4))),
    "uuid-v7": ("uuid", _v7),
    "text": ("text", _text),
    "date": ("date", lambda _, n: (dt.date(1990, 1, 1) + dt.timedelta(days=n * 17)).isoformat()),
    "timestamptz": ("timestamp with time zone", _instant),
    "timestamp": ("timestamp without time zone", lambda rng, n: _instant(rng, n)[:-6]),
}


def key_table(kind: str, rows: int = ROWS, seed: int = 5) -> tuple[TableDef, list[dict]]:
    """Table `t_<kind>` keyed by `id` of that type, or for `composite` by (tenant text, seq bigint)."""
    rng = random.Random(seed)
    name = f"t_{kind.replace('-', '_')}"
    if kind == "composite":
        columns = (Column("tenant", "text", nullable=False, primary_key=True),
                   Column("seq", "bigint", nullable=False, primary_key=True), Column("v", "integer"))
        data = [{"tenant": rng.choice(AWKWARD[:8]), "seq": n, "v": n} for n in range(rows)]
        return TableDef(name, columns), data
    pg_type, make = KEYS[kind]
    columns = (Column("id", pg_type, nullable=False, primary_key=True), Column("v", "integer"))
    return TableDef(name, columns), [{"id": make(rng, n), "v": n} for n in range(rows)]


def key_of(definition: TableDef, row: dict) -> tuple:
    return tuple(row[name] for name in definition.primary_key)


def in_server_order(definition: TableDef, rows: list[dict]) -> list[dict]:
    key = [definition.column(name) for name in definition.primary_key]
    return sorted(rows, key=lambda row: tuple(sort_key(column, row[column.name]) for column in key))


def record_reads(server) -> list[list[tuple[str, str]]]:
    """The query parameters of every table read the sandbox serves, from now on."""
    box, reads = server.sandbox, []
    read = box.read

    def recording(table, params, *args, **kwargs):
        reads.append(params)
        return read(table, params, *args, **kwargs)

    box.read = recording
    return reads


def ranges_read(reads: list[list[tuple[str, str]]]) -> int:
    """Distinct ranges whose rows were asked for: reads of every column with an upper bound."""
    bounded = [dict(params) for params in reads
               if ("select", "*") in params and any(value.startswith("lt.") or ".lt." in value for _, value in params)]
    return len({tuple(value for name, value in params.items() if "lt." in value) for params in bounded})


def config(server, definition: TableDef, mode: str, **overrides):
    return tap_config(server, **{"tables": [{"name": definition.name, "key": definition.primary_key}],
                                 "page_size": PAGE, **MODES[mode], **overrides})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", [*KEYS, "composite"])
def test_every_key_kind_is_read_in_parallel_ranges_each_row_once(start_sandbox, tmp_path, kind, mode):
    definition, rows = key_table(kind)
    server = start_sandbox(tables=[(definition, rows)], latency=0.01)
    reads = record_reads(server)
    run = run_tap(tmp_path, config(server, definition, mode, parallel_requests=4))
    assert run.returncode == 0, run.stderr
    assert run.records(definition.name) == [expected_record(row) for row in in_server_order(definition, rows)]
    assert 2 <= server.sandbox.stats.max_reads_in_flight <= 4
    assert ranges_read(reads) >= 4  # of about 8: arithmetic may leave a range empty


def test_key_ranges_are_filtered_with_bounds_the_server_parses(start_sandbox, tmp_path):
    """Text keys with every character a query string or a logic tree treats specially, in a
    single-column key (plain filters) and as part of a composite key (one `and=` tree)."""
    for kind in ("text", "composite"):
        definition, rows = key_table(kind, rows=400, seed=9)
        server = start_sandbox(tables=[(definition, rows)])
        run = run_tap(tmp_path, config(server, definition, "rows", parallel_requests=3, page_size=10))
        assert run.returncode == 0, run.stderr
        assert run.records(definition.name) == [expected_record(row) for row in in_server_order(definition, rows)]
        assert server.sandbox.stats.statuses[400] == 0


@pytest.mark.parametrize(("kind", "mode", "at_read"), [
    ("uuid-v4", "description", 12), ("text", "rows", 14), ("composite", "description", 14),
    ("timestamptz", "description", 12), ("bigint", "rows", 12),
    ("text", "rows", 6),  # between two rounds of the server naming cuts: 400 rows inserted low shift the later offsets
])
def test_rows_inserted_and_deleted_between_the_ranges_reads(start_sandbox, tmp_path, kind, mode, at_read):
    """Rows present for the whole read arrive exactly once, in key order; rows inserted or
    deleted meanwhile arrive once or not at all."""
    definition, rows = key_table(kind)
    taken = {key_of(definition, row) for row in rows}
    if at_read < 10:  # each just after one of the lowest keys past the first page
        new_rows = [{**row, "id": row["id"] + "~", "v": -1} for row in in_server_order(definition, rows)[PAGE:PAGE + 400]]
    else:  # anywhere
        fresh = key_table(kind, rows=ROWS, seed=77)[1]
        new_rows = [{**row, "v": -1} for row in fresh if key_of(definition, row) not in taken][::4]
    doomed = {key_of(definition, row) for row in rows[3::5]}
    server = start_sandbox(tables=[(definition, rows)], latency=0.005)
    box = server.sandbox

    def change_source(sandbox):
        single = len(definition.primary_key) == 1
        sandbox.delete_rows(definition.name, {key[0] if single else key for key in doomed})
        sandbox.insert_rows(definition.name, new_rows)

    box.faults.on_request[at_read] = change_source
    run = run_tap(tmp_path, config(server, definition, mode, parallel_requests=4))
    assert run.returncode == 0, run.stderr
    emitted = run.records(definition.name)
    keys = [key_of(definition, record) for record in emitted]
    assert len(keys) == len(set(keys)), "a row was read twice"
    assert set(keys) >= taken - doomed, "a row present throughout was lost"
    assert set(keys) <= taken | {key_of(definition, row) for row in new_rows}
    by_key = {key_of(definition, row): row for row in rows + new_rows}
    assert emitted == [expected_record(row) for row in in_server_order(definition, [by_key[key] for key in keys])]
    assert set(keys) & {key_of(definition, row) for row in new_rows}, "no inserted row was read: the test shows nothing"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["uuid-v4", "text", "bigint"])
def test_a_server_row_cap_below_page_size(start_sandbox, tmp_path, kind, mode):
    definition, rows = key_table(kind, rows=3000)
    server = start_sandbox(tables=[(definition, rows)], max_rows=300, latency=0.005)
    run = run_tap(tmp_path, config(server, definition, mode, page_size=1000, parallel_requests=4))
    assert run.returncode == 0, run.stderr
    assert run.records(definition.name) == [expected_record(row) for row in in_server_order(definition, rows)]
    assert server.sandbox.stats.max_reads_in_flight >= 2


def in_flight_at(stats, moment: float) -> int:
    return sum(arrival <= moment for arrival in stats.read_arrivals) - sum(answered <= moment for answered, _ in stats.read_log)


@pytest.mark.parametrize("fault", [{"rate_limit_every": 30}, {"error_every": 30, "error_status": 503}])
def test_push_back_pauses_for_retry_after_and_lowers_the_requests_in_flight(start_sandbox, tmp_path, fault):
    definition, rows = key_table("uuid-v4", rows=2000)
    server = start_sandbox(tables=[(definition, rows)], latency=0.03, retry_after=1, **fault)
    run = run_tap(tmp_path, config(server, definition, "description", parallel_requests=8))
    assert run.returncode == 0, run.stderr
    assert run.records(definition.name) == [expected_record(row) for row in in_server_order(definition, rows)]
    stats = server.sandbox.stats
    assert stats.max_reads_in_flight == 8
    pushed = sorted(answered for answered, status in stats.read_log if status in {429, 503})
    first, second = pushed[0], pushed[1]
    # (requests sent while the answer was on its way arrive just after it)
    assert not [arrival for arrival in stats.read_arrivals if first + 0.15 < arrival < first + 0.95], (
        "a request was sent before Retry-After had passed")
    after = [arrival for arrival in stats.read_arrivals if first + 1 <= arrival < second]
    assert after, "no request between the pauses: the test shows nothing"
    assert max(in_flight_at(stats, arrival) for arrival in after) <= 4


def test_long_text_keys_are_put_in_order_a_few_cuts_at_a_time(start_sandbox, tmp_path):
    """Keys of 600 characters: the server orders the cuts in several requests (a URL stays short),
    each after the last cut of the one before."""
    definition, rows = key_table("text")
    rows = [{**row, "id": row["id"] + "x" * 600} for row in rows]
    server = start_sandbox(tables=[(definition, rows)], latency=0.005)
    reads = record_reads(server)
    run = run_tap(tmp_path, config(server, definition, "rows", parallel_requests=4))
    assert run.returncode == 0, run.stderr
    assert run.records(definition.name) == [expected_record(row) for row in in_server_order(definition, rows)]
    ordering = [params for params in reads if any(name in {"or", "and"} for name, _ in params)]
    assert len(ordering) >= 2
    assert ranges_read(reads) >= 4


def test_a_page_outside_its_range_fails_the_run_where_python_orders_the_key():
    """A server that ignored a bound: caught by value for uuids and described timestamps, by the
    bound itself showing up for text (whose collation Python does not know)."""
    uuids = Keyset("t", ("id",), (STRING,), ("uuid",))
    low, high = "10000000-0000-4000-8000-000000000000", "80000000-0000-4000-8000-000000000000"
    inside, beyond = "7fffffff-0000-4000-8000-000000000000", "90000000-0000-4000-8000-000000000000"
    assert uuids.check_progress((low,), [{"id": low}, {"id": inside}], (high,), inclusive=True) == (inside,)
    with pytest.raises(SourceShapeError, match="ignored the key filter"):
        uuids.check_progress((low,), [{"id": inside}, {"id": beyond}], (high,), inclusive=True)
    with pytest.raises(SourceShapeError, match="ignored the key filter"):
        uuids.check_progress((low,), [{"id": low}], None)  # the cursor again, not inclusive
    instants = Keyset("t", ("at",), (DATE_TIME,), ("timestamp with time zone",))
    with pytest.raises(SourceShapeError, match="ignored the key filter"):  # 11:30 UTC is past 11:00 UTC
        instants.check_progress(("2024-01-01T00:00:00+00:00",), [{"at": "2024-01-01T12:30:00+01:00"}],
                                ("2024-01-01T11:00:00+00:00",))
    text = Keyset("t", ("k",), (STRING,))
    assert text.check_progress(("a",), [{"k": "zzz"}], ("b",)) == ("zzz",)  # not orderable here: not checked
    with pytest.raises(SourceShapeError, match="ignored the key filter"):
        text.check_progress(("a",), [{"k": "a1"}, {"k": "b"}], ("b",))
