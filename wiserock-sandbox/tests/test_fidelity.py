"""The sandbox speaks the real protocol: the official supabase client reads it exactly."""

from __future__ import annotations

import pytest
import requests
from postgrest.exceptions import APIError
from supabase import ClientOptions, create_client
from supabase_auth.errors import AuthApiError

from wiserock_sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD


def official_client(server):
    options = ClientOptions(auto_refresh_token=False, persist_session=False)
    return create_client(server.url, SANDBOX_API_KEY, options=options)


def test_official_client_pages_through_every_row(start_sandbox):
    server = start_sandbox(users=2500, notes=10)
    client = official_client(server)
    session = client.auth.sign_in_with_password({"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD})
    assert session.user.email == SANDBOX_EMAIL
    rows, start = [], 0
    while True:
        response = client.table("user").select("*", count="exact").order("id").range(start, start + 999).execute()
        assert response.count == 2500
        if not response.data:
            break
        rows += response.data
        start += len(response.data)
    assert rows == server.sandbox.rows("user")


def test_official_client_sees_the_max_rows_cap(start_sandbox):
    server = start_sandbox(users=300, notes=10, max_rows=100)
    client = official_client(server)
    client.auth.sign_in_with_password({"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD})
    response = client.table("user").select("*", count="exact").order("id").range(0, 999).execute()
    assert response.data == server.sandbox.rows("user")[:100]
    assert response.count == 300


def test_official_client_reports_bad_credentials(start_sandbox):
    client = official_client(start_sandbox(users=1, notes=1))
    with pytest.raises(AuthApiError, match="Invalid login credentials") as caught:
        client.auth.sign_in_with_password({"email": SANDBOX_EMAIL, "password": "wrong"})
    assert caught.value.code == "invalid_credentials"


def test_official_client_reports_expired_token_and_unknown_table(start_sandbox):
    server = start_sandbox(users=5, notes=5)
    client = official_client(server)
    client.auth.sign_in_with_password({"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD})
    with pytest.raises(APIError) as missing:
        client.table("users").select("*").execute()
    assert missing.value.code == "PGRST205"
    server.sandbox.expire_tokens()
    with pytest.raises(APIError) as expired:
        client.table("user").select("*").execute()
    assert expired.value.code == "PGRST303" and expired.value.message == "JWT expired"


@pytest.fixture
def read(start_sandbox):
    server = start_sandbox(users=50, notes=5)
    token = requests.post(f"{server.url}/auth/v1/token", params={"grant_type": "password"},
                          json={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD},
                          headers={"apikey": SANDBOX_API_KEY}, timeout=10).json()["access_token"]

    def get(query: str, **headers: str) -> requests.Response:
        return requests.get(f"{server.url}/rest/v1/user?{query}", timeout=10,
                            headers={"apikey": SANDBOX_API_KEY, "Authorization": f"Bearer {token}", **headers})

    get.rows = server.sandbox.rows("user")  # type: ignore[attr-defined]
    return get


def test_range_header_intersects_with_limit_and_offset(read):
    response = read("select=id&order=id.asc&offset=5&limit=10", Range="8-30")
    assert [r["id"] for r in response.json()] == [r["id"] for r in read.rows[8:15]]
    assert response.headers["Content-Range"] == "8-14/*"
    assert read("order=id.asc", Range="items=0-1").json() == read.rows  # ignored, as PostgREST does


def test_count_statuses_and_content_range(read):
    partial = read("order=id.asc&limit=10", Prefer="count=exact")
    assert partial.status_code == 206 and partial.headers["Content-Range"] == "0-9/50"
    whole = read("order=id.asc", Prefer="count=exact")
    assert whole.status_code == 200 and whole.headers["Content-Range"] == "0-49/50"
    past = read("order=id.asc&offset=60", Prefer="count=exact")
    assert past.status_code == 416 and past.json()["code"] == "PGRST103"
    assert past.json()["details"] == "An offset of 60 was requested, but there are only 50 rows."
    assert read("order=id.asc", Range="9-3").status_code == 416
    empty = read(f"order=id.asc&id=gt.{read.rows[-1]['id']}")
    assert empty.status_code == 200 and empty.json() == [] and empty.headers["Content-Range"] == "*/*"


def test_filters(read):
    pivot = read.rows[20]["id"]
    for operator, expected in [("gt", [r for r in read.rows if r["id"] > pivot]),
                               ("gte", [r for r in read.rows if r["id"] >= pivot]),
                               ("lt", [r for r in read.rows if r["id"] < pivot]),
                               ("lte", [r for r in read.rows if r["id"] <= pivot]),
                               ("eq", [r for r in read.rows if r["id"] == pivot])]:
        assert read(f"order=id.asc&id={operator}.{pivot}").json() == expected


def test_login_error_shapes_follow_the_api_version_header(start_sandbox):
    server = start_sandbox(users=1, notes=1)
    url = f"{server.url}/auth/v1/token?grant_type=password"
    body = {"email": SANDBOX_EMAIL, "password": "wrong"}
    legacy = requests.post(url, json=body, headers={"apikey": SANDBOX_API_KEY}, timeout=10)
    assert legacy.status_code == 400
    assert legacy.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}
    assert legacy.headers["x-sb-error-code"] == "invalid_credentials"
    no_key = requests.post(url, json=body, timeout=10)
    assert no_key.status_code == 401 and no_key.json()["message"] == "No API key found in request"


def test_two_bounds_on_one_column_are_anded(read):
    """`id=gt.a&id=lte.b`: a key range, as a client reading disjoint ranges asks for it."""
    low, high = read.rows[10]["id"], read.rows[30]["id"]
    answer = read(f"select=id&order=id.asc&id=gt.{low}&id=lte.{high}")
    assert [r["id"] for r in answer.json()] == [r["id"] for r in read.rows[11:31]]


@pytest.mark.parametrize("kind", ["exact", "planned", "estimated"])
def test_every_count_kind_gives_a_numeric_total(read, kind):
    answer = read("select=id&order=id.desc&limit=1", Prefer=f"count={kind}")
    assert answer.status_code == 206 and answer.headers["Content-Range"] == "0-0/50"
    assert answer.json() == [{"id": read.rows[-1]["id"]}]
