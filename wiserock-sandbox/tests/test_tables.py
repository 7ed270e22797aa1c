"""Tables as data: any columns and types, the OpenAPI root, typed ordering, logic trees and RLS,
read with the official supabase client (and its own HTTP session where it has no call)."""

from __future__ import annotations

import decimal
import json
import pathlib
import subprocess
import sys
import time
import uuid

import pytest
import requests
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client

from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_SERVICE_KEY, Column, TableDef

EVENT = TableDef("event", (
    Column("tenant", "text", nullable=False, primary_key=True),
    Column("seq", "integer", nullable=False, primary_key=True),
    Column("device", "uuid", references="device.id"),
    Column("amount", "numeric"),
    Column("payload", "jsonb"),
    Column("tags", "text[]"),
    Column("at", "timestamp with time zone"),
))
DEVICE = TableDef("device", (Column("id", "uuid", nullable=False, primary_key=True), Column("name", "character varying(40)")))
# Tenants with the characters PostgREST reserves in logic trees, and cases Python orders unlike a collation.
TENANTS = ["a,b", "a.b", "(x)", 'say "hi"', "back\\slash", "Zed", "apple", "Émile", "zoe"]
DEVICES = [str(uuid.UUID(int=n * 0x1111_0000_0000_0000_0000_0000_0000_0001)) for n in range(1, 6)]
BIG = decimal.Decimal("12345678901234567890.123")


def event_rows() -> list[dict]:
    return [{"tenant": tenant, "seq": seq, "device": DEVICES[seq % len(DEVICES)],
             "amount": [BIG, decimal.Decimal("0.1"), 7, None][(seq + len(tenant)) % 4],
             "payload": {"n": seq, "deep": [1, {"x": decimal.Decimal("2.50")}]} if seq % 2 else "plain",
             "tags": ["t1", f"seq {seq}"], "at": f"2024-03-0{seq}T10:00:00.{seq:06d}+0{seq}:00"}
            for tenant in TENANTS for seq in range(1, 4)]


@pytest.fixture
def events(start_sandbox):
    return start_sandbox(tables=[(DEVICE, [{"id": d, "name": f"device {i}"} for i, d in enumerate(DEVICES)]),
                                 (EVENT, event_rows())])


def client_for(server, key=SANDBOX_API_KEY, *, login=True):
    client = create_client(server.url, key, options=ClientOptions(auto_refresh_token=False, persist_session=False))
    if login:
        client.auth.sign_in_with_password({"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD})
    return client


def test_openapi_root_describes_every_table_for_the_service_key(events):
    """The official client has no call for the root: its own HTTP session (base URL /rest/v1/,
    its apikey and Authorization headers) asks for it, as the client would."""
    client = client_for(events, SANDBOX_SERVICE_KEY, login=False)
    answer = client.postgrest.session.get("", headers={"Accept": "application/openapi+json"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/openapi+json")
    document = answer.json()
    assert document["swagger"] == "2.0" and set(document["definitions"]) == {"device", "event"}
    event = document["definitions"]["event"]
    assert event["required"] == ["tenant", "seq"]
    assert event["properties"]["tenant"] == {"format": "text", "type": "string",
                                             "description": "Note:\nThis is a Primary Key.<pk/>"}
    assert event["properties"]["device"]["description"].endswith("<fk table='device' column='id'/>")
    assert event["properties"]["amount"] == {"format": "numeric", "type": "number"}
    assert event["properties"]["payload"] == {"format": "jsonb"}  # json columns have no JSON type
    assert event["properties"]["tags"] == {"format": "text[]", "type": "array", "items": {"type": "string"}}
    assert document["definitions"]["device"]["properties"]["name"]["format"] == "character varying(40)"


def test_a_view_is_described_as_postgrest_describes_views(start_sandbox):
    """Reference 1.5: a view's columns are nullable (no `required`), it keeps its table's primary key
    when every key column passes through, and a column passing a foreign key through keeps the
    table's `<fk/>` note, naming the table."""
    rows = [{**row, "device": DEVICES[0] if row["seq"] == 1 else row["device"]} for row in event_rows()]
    with_key = TableDef.view("first_events", EVENT, ["tenant", "seq", "device"], where={"seq": 1})
    without_key = TableDef.view("event_devices", EVENT, ["tenant", "device"])
    server = start_sandbox(tables=[(DEVICE, []), (EVENT, rows), (with_key, None), (without_key, None)])
    document = client_for(server, SANDBOX_SERVICE_KEY, login=False).postgrest.session.get(
        "", headers={"Accept": "application/openapi+json"}).json()
    view = document["definitions"]["first_events"]
    assert "required" not in view and "required" in document["definitions"]["event"]
    assert view["properties"]["tenant"]["description"] == "Note:\nThis is a Primary Key.<pk/>"
    assert view["properties"]["device"] == document["definitions"]["event"]["properties"]["device"]
    assert view["properties"]["device"]["description"].endswith("<fk table='device' column='id'/>")
    assert "<pk/>" not in json.dumps(document["definitions"]["event_devices"])  # seq does not pass through
    # Its rows are its table's, as they are now.
    client = client_for(server)
    shown = client.table("first_events").select("*").execute().data
    assert sorted(shown, key=lambda row: row["tenant"]) == sorted(
        ({"tenant": row["tenant"], "seq": 1, "device": DEVICES[0]} for row in rows if row["seq"] == 1),
        key=lambda row: row["tenant"])
    server.sandbox.delete_rows("event", [("zoe", 1)])
    assert "zoe" not in {row["tenant"] for row in client.table("first_events").select("tenant").execute().data}


def test_openapi_root_is_refused_to_the_anon_key_with_a_postgrest_error(events):
    client = client_for(events)
    answer = client.postgrest.session.get("", headers={"Accept": "application/openapi+json"})
    assert answer.status_code == 403
    assert set(answer.json()) == {"code", "message", "details", "hint"}  # the client's APIError shape
    assert events.sandbox.stats.reads == 0  # the root is not a table read


def test_rows_carry_every_column_and_exact_numbers(events):
    client = client_for(events)
    token = client.auth.get_session().access_token
    raw = requests.get(f"{events.url}/rest/v1/event", params={"select": "*", "order": "tenant.asc,seq.asc"}, timeout=10,
                       headers={"apikey": SANDBOX_API_KEY, "Authorization": f"Bearer {token}"})
    rows = json.loads(raw.text, parse_float=decimal.Decimal)
    assert all(list(row) == [column.name for column in EVENT.columns] for row in rows)
    assert BIG in [row["amount"] for row in rows] and "12345678901234567890.123" in raw.text
    assert {"n": 1, "deep": [1, {"x": decimal.Decimal("2.50")}]} in [row["payload"] for row in rows]
    assert client.table("event").select("*").execute().data[0].keys() == rows[0].keys()


def test_text_orders_by_collation_and_uuid_by_bytes(events):
    client = client_for(events)
    tenants = [row["tenant"] for row in client.table("event").select("tenant").eq("seq", 1).order("tenant").execute().data]
    assert sorted(tenants) != tenants  # not Python's code-point order ...
    assert tenants.index("apple") < tenants.index("Émile") < tenants.index("Zed") < tenants.index("zoe")  # ... but a collation's
    devices = [row["id"] for row in client.table("device").select("id").order("id").execute().data]
    assert devices == sorted(DEVICES, key=lambda text: uuid.UUID(text).bytes)
    later = client.table("device").select("id").gt("id", DEVICES[1]).order("id").execute().data
    assert [row["id"] for row in later] == devices[devices.index(DEVICES[1]) + 1:]


def test_a_composite_key_pages_with_an_or_tree_and_quoted_values(events):
    """Keyset paging on (tenant, seq) through the client's or_(): every value double-quoted, with
    backslashes before quotes and backslashes, as PostgREST's logic-tree grammar reads them."""
    client = client_for(events)

    def quoted(value):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    everything = client.table("event").select("tenant,seq").order("tenant").order("seq").execute().data
    seen, cursor = [], None
    while True:
        query = client.table("event").select("tenant,seq").order("tenant").order("seq").limit(2)
        if cursor:
            tenant, seq = quoted(cursor["tenant"]), quoted(cursor["seq"])
            query = query.or_(f"tenant.gt.{tenant},and(tenant.eq.{tenant},seq.gt.{seq})")
        page = query.execute().data
        if not page:
            break
        seen += page
        cursor = page[-1]
    assert seen == everything and len(seen) == len(event_rows())


def test_filters_compare_as_the_column_type(events):
    client = client_for(events)
    later = [row["seq"] for row in client.table("event").select("seq").eq("tenant", "zoe").gt(
        "at", "2024-03-02T09:00:00+00:00").order("seq").execute().data]
    assert later == [3]  # seq 2 is 2024-03-02T10:00+02:00, 08:00 UTC: earlier, though its text sorts later
    with pytest.raises(APIError) as bad:
        client.table("device").select("id").gt("id", "not-a-uuid").execute()
    assert bad.value.code == "22P02"


def test_rls_without_policy_hides_rows_from_users_not_from_the_service_role(events):
    events.sandbox.set_rls_without_policy("device")
    assert client_for(events).table("device").select("*").execute().data == []
    assert len(client_for(events, SANDBOX_SERVICE_KEY, login=False).table("device").select("*").execute().data) == 5


def test_columns_can_be_added_and_dropped(events):
    box = events.sandbox
    box.add_column("device", Column("serial", "bigint"))
    box.drop_column("device", "name")
    row = client_for(events).table("device").select("*").limit(1).execute().data[0]
    assert row == {"id": row["id"], "serial": None}


def test_command_line_serves_a_definition_file(tmp_path):
    definitions = tmp_path / "tables.json"
    view = TableDef.view("device_ids", DEVICE, ["id"])
    definitions.write_text(json.dumps({"tables": [{**DEVICE.to_json(), "rows": [{"id": DEVICES[0], "name": "one"}]},
                                                  view.to_json()]}))
    url_file = tmp_path / "url"
    process = subprocess.Popen([sys.executable, "-m", "wiserock_sandbox.cli", "--tables", str(definitions),
                                "--url-file", str(url_file)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        server = type("Server", (), {"url": url_file.read_text()})
        assert client_for(server).table("device").select("*").execute().data == [{"id": DEVICES[0], "name": "one"}]
        assert client_for(server).table("device_ids").select("*").execute().data == [{"id": DEVICES[0]}]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"tables of {pathlib.Path(definitions)}" in output
