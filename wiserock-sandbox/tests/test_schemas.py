"""Schemas other than `public` (section 0 of the wire reference), read with the official client's
`schema()` (its Accept-Profile header), and the gateway's refusal of reads past `max_in_flight`."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client

from wiserock_sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_EMAIL,
    SANDBOX_PASSWORD,
    SANDBOX_SERVICE_KEY,
    Column,
    Sandbox,
    SandboxHTTPServer,
    TableDef,
)

PUBLIC_X = TableDef("x", (Column("id", "bigint", nullable=False, primary_key=True), Column("label", "text")))
ANALYTICS_X = TableDef("x", (Column("id", "uuid", nullable=False, primary_key=True), Column("score", "numeric")),
                       schema="analytics")
ANALYTICS_DAILY = TableDef("daily", (Column("day", "date", nullable=False, primary_key=True),), schema="analytics")
ANALYTICS_IDS = TableDef.view("x_ids", ANALYTICS_X, ["id"])
UUIDS = ["00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000001"]


@pytest.fixture
def server(start_sandbox):
    return start_sandbox(tables=[
        (PUBLIC_X, [{"id": 1, "label": "public one"}, {"id": 2, "label": "public two"}]),
        (ANALYTICS_X, [{"id": UUIDS[0], "score": 2}, {"id": UUIDS[1], "score": 1}]),
        (ANALYTICS_DAILY, [{"day": "2024-01-01"}]),
        (ANALYTICS_IDS, None),
    ])


def client_for(server, key: str = SANDBOX_API_KEY, *, login: bool = True):
    client = create_client(server.url, key, options=ClientOptions(auto_refresh_token=False, persist_session=False))
    if login:
        client.auth.sign_in_with_password({"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD})
    return client


def test_the_same_table_name_in_two_schemas(server):
    client = client_for(server)
    assert client.table("x").select("*").order("id").execute().data == [
        {"id": 1, "label": "public one"}, {"id": 2, "label": "public two"}]
    analytics = client.schema("analytics").table("x").select("*").order("id").execute().data
    assert analytics == [{"id": UUIDS[1], "score": 1}, {"id": UUIDS[0], "score": 2}]
    assert client.schema("analytics").table("x_ids").select("*").order("id").execute().data == [
        {"id": UUIDS[1]}, {"id": UUIDS[0]}]
    assert client.schema("public").table("x").select("id").order("id").execute().data == [{"id": 1}, {"id": 2}]


def test_the_answer_names_its_schema_when_several_are_exposed(server):
    answer = requests.get(f"{server.url}/rest/v1/daily", timeout=10, headers={
        "apikey": SANDBOX_SERVICE_KEY, "Authorization": f"Bearer {SANDBOX_SERVICE_KEY}", "Accept-Profile": "analytics"})
    assert answer.status_code == 200 and answer.headers["Content-Profile"] == "analytics"


def test_a_schema_not_exposed_is_refused_with_the_exposed_ones_listed(server):
    client = client_for(server)
    with pytest.raises(APIError) as refused:
        client.schema("private").table("x").select("*").execute()
    assert refused.value.code == "PGRST106"
    assert refused.value.message == "The schema must be one of the following: public, analytics"
    raw = requests.get(f"{server.url}/rest/v1/x", timeout=10, headers={
        "apikey": SANDBOX_SERVICE_KEY, "Authorization": f"Bearer {SANDBOX_SERVICE_KEY}", "Accept-Profile": "private"})
    assert raw.status_code == 406
    assert raw.json() == {"code": "PGRST106", "details": None, "hint": None,
                          "message": "The schema must be one of the following: public, analytics"}


def test_an_unknown_table_is_named_with_its_schema(server):
    client = client_for(server)
    with pytest.raises(APIError) as missing:
        client.schema("analytics").table("nope").select("*").execute()
    assert missing.value.code == "PGRST205"
    assert missing.value.message == "Could not find the table 'analytics.nope' in the schema cache"
    with pytest.raises(APIError) as elsewhere:
        client.table("daily").select("*").execute()  # in analytics, not in public
    assert elsewhere.value.message == "Could not find the table 'public.daily' in the schema cache"


def test_the_openapi_root_describes_the_schema_accept_profile_picks(server):
    session = client_for(server, SANDBOX_SERVICE_KEY, login=False).postgrest.session
    public = session.get("", headers={"Accept": "application/openapi+json"}).json()
    assert set(public["definitions"]) == {"x"} and public["info"]["title"] == "standard public schema"
    assert public["definitions"]["x"]["properties"]["id"]["format"] == "bigint"
    analytics = session.get("", headers={"Accept": "application/openapi+json", "Accept-Profile": "analytics"})
    assert analytics.headers["Content-Profile"] == "analytics"
    document = analytics.json()
    assert set(document["definitions"]) == {"x", "daily", "x_ids"}
    assert document["definitions"]["x"]["properties"]["id"]["format"] == "uuid"
    assert document["info"]["title"] == "PostgREST API"
    refused = session.get("", headers={"Accept": "application/openapi+json", "Accept-Profile": "private"})
    assert refused.status_code == 406 and refused.json()["code"] == "PGRST106"


def test_explicit_exposed_schemas():
    sandbox = Sandbox(tables=[(PUBLIC_X, [{"id": 1, "label": "a"}]), (ANALYTICS_DAILY, [])],
                      schemas=["public", "graphql_public"])
    with SandboxHTTPServer(sandbox) as server:
        client = client_for(server)
        with pytest.raises(APIError) as refused:
            client.schema("analytics").table("daily").select("*").execute()
        assert refused.value.message == "The schema must be one of the following: public, graphql_public"
        assert client.table("x").select("id").execute().data == [{"id": 1}]


def test_reads_past_max_in_flight_get_429_with_retry_after(start_sandbox):
    server = start_sandbox(users=20, notes=5, latency=0.4, max_in_flight=2, retry_after=3)
    headers = {"apikey": SANDBOX_SERVICE_KEY, "Authorization": f"Bearer {SANDBOX_SERVICE_KEY}"}

    def read(_: int) -> requests.Response:
        return requests.get(f"{server.url}/rest/v1/user?select=id&order=id.asc&limit=5", headers=headers, timeout=10)

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(read, range(5)))
    refused = [answer for answer in answers if answer.status_code == 429]
    assert sorted(answer.status_code for answer in answers) == [200, 200, 429, 429, 429]
    assert all(answer.headers["Retry-After"] == "3" and answer.json() == {"message": "Too many requests"}
               for answer in refused)
    stats = server.sandbox.stats
    assert stats.refused_in_flight == 3 and stats.max_reads_in_flight == 2 and stats.reads_in_flight == 0
    assert read(0).status_code == 200  # once the others are answered
