"""The API's tables as the API has them: tables unlike the sample's (other columns, a uuid key, a
composite key, numeric, jsonb, arrays, timestamps with offsets, a table added through the
`tables` setting) loaded through `meltano run` into PostgreSQL, every column exactly, with
types from the rows (the anon key) and from the API's description (the service-role key),
as RECORD messages and as BATCH files."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json

import pytest

from tests.conftest import meltano, pipeline_env
from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_SERVICE_KEY, Faults, Sandbox, SandboxHTTPServer
from wiserock_sandbox.variants import unlike_sample

TABLES = [{"name": "user"}, {"name": "note", "parents": ["user"]},
          {"name": "event", "key": ["tenant", "seq"], "parents": ["user"]}]
KEYS = {"user": ["id"], "note": ["id"], "event": ["tenant", "seq"]}
COLUMN_TYPES = {
    "stg_wiserock_user": {"id": "bigint", "username": "text", "email": "text", "activeflag": "boolean",
                          "balance": "numeric", "profile": "jsonb", "tags": "jsonb",
                          "signed_up_at": "timestamp with time zone"},
    "stg_wiserock_note": {"id": "text", "author_id": "bigint", "content": "text", "pinned": "boolean",
                          "inserted_at": "timestamp with time zone"},
    "stg_wiserock_event": {"tenant": "text", "seq": "bigint", "user_id": "bigint", "amount": "numeric", "ratio": "numeric",
                           "due": "text", "extra": "jsonb", "day": "date", "local_time": "timestamp with time zone"},
}
FLAGS = {"y": True, "yes": True, "true": True, "t": True, "n": False, "no": False, "false": False, "f": False}
# Types from the rows (the anon key and the project's login) or from the description (the service-role key alone).
DISCOVERY = {"rows": {"API_KEY": SANDBOX_API_KEY},
             "description": {"API_KEY": SANDBOX_SERVICE_KEY, "API_EMAIL": "", "API_PASSWORD": ""}}
MESSAGES = {"RECORD": "standard-targets", "BATCH": "dev"}


def load(warehouse, server, discovery: str, environment: str, *tasks: str, **extra: str):
    env = pipeline_env(warehouse, server, TAP_WISEROCK_API_TABLES=json.dumps(TABLES), TAP_WISEROCK_API_PAGE_SIZE="7",
                       **DISCOVERY[discovery], **extra)
    return meltano("--environment", environment, "run", "tap-wiserock-api", "target-postgres", *tasks, env=env)


def expected_text(column_type: str, value) -> object:
    """A source value as the staging column must hold it (numeric as PostgreSQL's exact text,
    jsonb parsed with exact decimals, timestamps as instants; a value without an offset is UTC)."""
    if value is None:
        return None
    if column_type == "numeric":
        return format(decimal.Decimal(str(value)), "f")
    if column_type == "timestamp with time zone":
        instant = dt.datetime.fromisoformat(value)
        return instant if instant.tzinfo else instant.replace(tzinfo=dt.timezone.utc)
    if column_type == "date":
        return dt.date.fromisoformat(value)
    if column_type == "boolean" and isinstance(value, str):
        return FLAGS[value.lower()]
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def loaded_rows(warehouse, table: str, types: dict[str, str]) -> dict[tuple, tuple]:
    """Every row by its key: numeric and jsonb as text (psycopg would make floats of jsonb numbers)."""
    columns = ", ".join(f"{name}::text" if kind in {"numeric", "jsonb"} else name for name, kind in types.items())
    key = KEYS[table.removeprefix("stg_wiserock_")]
    rows = {}
    for row in warehouse.query(f"select {columns} from {table}"):
        values = tuple(json.loads(value, parse_float=decimal.Decimal) if kind == "jsonb" and value is not None else value
                       for value, kind in zip(row, types.values(), strict=True))
        rows[values[:len(key)]] = values
    return rows


def expected_rows(source: list[dict], table: str, types: dict[str, str]) -> dict[tuple, tuple]:
    key = KEYS[table.removeprefix("stg_wiserock_")]
    return {tuple(row[name] for name in key): tuple(expected_text(kind, row[name]) for name, kind in types.items())
            for row in source}


@pytest.mark.parametrize("messages", MESSAGES)
@pytest.mark.parametrize("discovery", DISCOVERY)
def test_every_column_loads_exactly_whatever_the_tables_hold(warehouse, unlike, discovery, messages):
    result = load(warehouse, unlike, discovery, MESSAGES[messages])
    assert result.returncode == 0, result.stderr[-3000:]
    assert ('"metric":"batch_count"' in result.stderr) == (messages == "BATCH")
    for table, types in COLUMN_TYPES.items():
        assert warehouse.column_types(table) == types, table
        assert warehouse.query("select array_agg(a.attname order by k.ord)::text from pg_index i "
                               "cross join unnest(i.indkey) with ordinality k(attnum, ord) "
                               "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
                               "where i.indisprimary and i.indrelid = %s::regclass",
                               f'"{warehouse.schema}".{table}') == [("{" + ",".join(KEYS[table[13:]]) + "}",)]
        source = unlike.sandbox.rows(table.removeprefix("stg_wiserock_"))
        assert loaded_rows(warehouse, table, types) == expected_rows(source, table, types), table


def test_a_table_hidden_by_rls_after_a_good_run_is_a_warning(warehouse, sandbox):
    """Meltano keeps the tap's state of the last successful run and passes it back: a table that
    held rows and now reads empty is named with Row Level Security."""
    env = pipeline_env(warehouse, sandbox)
    run = ("run", f"--state-id-suffix={warehouse.schema}", "tap-wiserock-api", "target-postgres")
    assert meltano(*run, env=env).returncode == 0
    assert warehouse.count("stg_wiserock_note") == len(sandbox.sandbox.rows("note"))
    sandbox.sandbox.set_rls_without_policy("note")
    hidden = meltano(*run, env=env)
    assert hidden.returncode == 0, hidden.stderr[-3000:]
    (warning,) = {line.split("Table 'note'", 1)[1] for line in hidden.stderr.splitlines()
                  if "Table 'note' returned no rows" in line}
    assert f"but {len(sandbox.sandbox.rows('note')):,} at the last successful run" in warning and "Row Level Security" in warning
    assert warehouse.count("stg_wiserock_note") == 0  # the source answered no rows: the table follows


@pytest.mark.parametrize("discovery", DISCOVERY)
def test_a_table_outside_public_loads_into_its_own_staging_table(warehouse, discovery):
    """A tables entry naming its schema: the rows of analytics.note (not public.note, which also
    exists) land in stg_wiserock_note, the user table beside it from public."""
    public = unlike_sample()[:2]  # user and note
    note, note_rows = public[1]
    rows = [{**row, "content": f"analytics: {row['content']}"} for row in note_rows[:5]]
    with SandboxHTTPServer(Sandbox(tables=[*public, (dataclasses.replace(note, schema="analytics"), rows)],
                                   faults=Faults())) as server:
        env = pipeline_env(warehouse, server, **DISCOVERY[discovery], TAP_WISEROCK_API_TABLES=json.dumps(
            [{"name": "user"}, {"name": "note", "schema": "analytics"}]))
        result = meltano("run", "tap-wiserock-api", "target-postgres", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        types = COLUMN_TYPES["stg_wiserock_note"]
        assert loaded_rows(warehouse, "stg_wiserock_note", types) == expected_rows(rows, "stg_wiserock_note", types)
        assert warehouse.count("stg_wiserock_user") == len(server.sandbox.rows("user"))
