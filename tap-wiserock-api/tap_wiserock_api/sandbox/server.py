"""A local Supabase-compatible server: Supabase Auth token grants and PostgREST reads.

It follows shared/reference/supabase-protocol.md: JSON login body, error bodies in each
documented shape, JWT-shaped expiring tokens, `limit`/`offset` and `Range` paging
intersected with a silent max-rows cap, `Prefer: count=exact` with `Content-Range` and
200/206/416. Faults are switched on through `Faults`, for tests and benchmarks.

Nothing in the tap imports this module: it is the API's stand-in, not part of the tap.
"""

from __future__ import annotations

import base64
import bisect
import collections
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import typing as t
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tap_wiserock_api.sandbox.data import Row, generate_tables

SANDBOX_EMAIL = "analyst@wiserock.example"
SANDBOX_PASSWORD = "sandbox-password"  # noqa: S105 - a local sandbox's fixed credential
SANDBOX_API_KEY = "sandbox-anon-key"
_JWT_SECRET = b"wiserock-sandbox-jwt-secret"
_RANGE_HEADER = re.compile(r"^(\d+)-(\d*)$")
_FILTER_OPERATORS: dict[str, t.Callable[[t.Any, t.Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
_CLOUDFLARE_TITLES = {
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}

RequestAction = t.Callable[["Sandbox"], None]


@dataclasses.dataclass
class Faults:
    """Switchable server behaviour. Counters apply to REST reads (`/rest/v1/...`) only."""

    max_rows: int = 1000
    token_lifetime: int = 3600
    jwt_expired_code: str = "PGRST303"  # PostgREST >= 13; PGRST301 on older servers
    rate_limit_every: int = 0  # answer every Nth read with 429 and Retry-After
    retry_after: int = 1
    error_every: int = 0  # answer every Nth read with `error_status`
    error_status: int = 503
    drop_every: int = 0  # close the connection without answering every Nth read
    latency: float = 0.0  # seconds added to every read
    # Run an action (delete rows, expire tokens, ...) just before serving read number N.
    on_request: dict[int, RequestAction] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Stats:
    logins: int = 0
    refreshes: int = 0
    reads: int = 0
    token_requests: int = 0
    read_log: list[tuple[float, int]] = dataclasses.field(default_factory=list)  # (time, status)
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    issued_tokens: list[str] = dataclasses.field(default_factory=list)


class ApiError(Exception):
    """An HTTP error answer: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, t.Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status, self.body, self.headers = status, body, headers or {}


def postgrest_error(status: int, code: str, message: str, details: str | None = None,
                    hint: str | None = None, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, {"code": code, "details": details, "hint": hint, "message": message}, headers)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sandbox:
    """The sandbox's state: tables, issued tokens, faults and counters."""

    def __init__(self, *, seed: int = 7, users: int = 2500, notes: int = 12000,
                 faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.stats = Stats()
        self.user_id = str(uuid.UUID(int=seed))
        self._lock = threading.Lock()
        self._tables: dict[str, list[Row]] = {}
        self._ids: dict[str, list[int]] = {}
        for name, rows in generate_tables(seed, users, notes).items():
            self.replace_rows(name, rows)
        self._refresh_tokens: dict[str, bool] = {}  # token -> already used
        self._revoked: set[str] = set()

    # -- data, for tests and actions -------------------------------------------------
    def rows(self, table: str) -> list[Row]:
        with self._lock:
            return [dict(row) for row in self._tables[table]]

    def replace_rows(self, table: str, rows: t.Iterable[Row]) -> None:
        ordered = sorted(rows, key=lambda row: row["id"])
        with self._lock:
            self._tables[table] = ordered
            self._ids[table] = [row["id"] for row in ordered]

    def delete_rows(self, table: str, ids: t.Iterable[int]) -> None:
        doomed = set(ids)
        self.replace_rows(table, [row for row in self.rows(table) if row["id"] not in doomed])

    def insert_rows(self, table: str, rows: t.Iterable[Row]) -> None:
        self.replace_rows(table, [*self.rows(table), *rows])

    def drop_table(self, table: str) -> None:
        with self._lock:
            del self._tables[table], self._ids[table]

    def expire_tokens(self) -> None:
        """Make every access token issued so far answer 401 "JWT expired"."""
        with self._lock:
            self._revoked.update(self.stats.issued_tokens)

    # -- auth ------------------------------------------------------------------------
    def issue_session(self) -> dict[str, t.Any]:
        now = int(time.time())
        lifetime = self.faults.token_lifetime
        claims = {"aud": "authenticated", "role": "authenticated", "sub": self.user_id,
                  "email": SANDBOX_EMAIL, "iat": now, "exp": now + lifetime,
                  "session_id": secrets.token_hex(8)}
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps(claims).encode())
        signature = _b64url(hmac.new(_JWT_SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        access_token = f"{header}.{payload}.{signature}"
        refresh_token = secrets.token_urlsafe(16)
        with self._lock:
            self._refresh_tokens[refresh_token] = False
            self.stats.issued_tokens.extend((access_token, refresh_token))
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": lifetime,
            "expires_at": now + lifetime,
            "refresh_token": refresh_token,
            "user": {
                "id": self.user_id, "aud": "authenticated", "role": "authenticated",
                "email": SANDBOX_EMAIL, "email_confirmed_at": "2024-01-01T00:00:00Z",
                "phone": "", "app_metadata": {"provider": "email", "providers": ["email"]},
                "user_metadata": {}, "identities": [], "is_anonymous": False,
                "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            },
        }

    def use_refresh_token(self, token: str) -> None:
        with self._lock:
            used = self._refresh_tokens.get(token)
            if used is None:
                raise ApiError(400, {"code": "refresh_token_not_found",
                                     "message": "Invalid Refresh Token: Refresh Token Not Found"})
            if used:
                raise ApiError(400, {"code": "refresh_token_already_used",
                                     "message": "Invalid Refresh Token: Already Used"})
            self._refresh_tokens[token] = True

    def check_access_token(self, authorization: str | None) -> None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if not token or token == SANDBOX_API_KEY:
            raise postgrest_error(401, "PGRST302", "Anonymous access is disabled")
        try:
            header, payload, signature = token.split(".")
            expected = hmac.new(_JWT_SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(_b64url_decode(signature), expected):
                raise ValueError("bad signature")
            claims = json.loads(_b64url_decode(payload))
        except ValueError as exc:
            raise postgrest_error(401, "PGRST301", "JWSError JWSInvalidSignature") from exc
        if claims["exp"] <= time.time() or token in self._revoked:
            raise postgrest_error(
                401, self.faults.jwt_expired_code, "JWT expired",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token", error_description="JWT expired"'},
            )

    # -- PostgREST reads -------------------------------------------------------------
    def read(self, table: str, params: list[tuple[str, str]], range_header: str | None,
             prefer: str | None) -> tuple[int, list[Row], dict[str, str]]:
        with self._lock:
            if table not in self._tables:
                close = [name for name in self._tables if name.rstrip("s") == table.rstrip("s")]
                raise postgrest_error(
                    404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache",
                    hint=f"Perhaps you meant the table 'public.{close[0]}'" if close else None)
            rows, ids = self._tables[table], self._ids[table]
        columns = list(rows[0]) if rows else []
        query = _Query.parse(table, params, columns)
        selected = query.apply(rows, ids)
        lower, upper = query.offset, (query.offset + query.limit - 1) if query.limit is not None else None
        if range_header:
            match = _RANGE_HEADER.match(range_header.strip())
            if match:  # other forms (such as items=0-9) are ignored, as PostgREST does
                first, last = int(match[1]), int(match[2]) if match[2] else None
                if last is not None and last < first:
                    raise postgrest_error(416, "PGRST103", "Requested range not satisfiable",
                                          details="The lower boundary must be lower than or equal to the upper boundary")
                lower = max(lower, first)
                if last is not None:
                    upper = last if upper is None else min(upper, last)
        capped = lower + self.faults.max_rows - 1  # db-max-rows: silently intersected into every read
        upper = capped if upper is None else min(upper, capped)
        page = selected[lower:upper + 1] if upper >= lower else []
        total = len(selected) if prefer and "count=exact" in prefer else None
        status = 200
        if total is not None:
            if lower > total:
                raise postgrest_error(416, "PGRST103", "Requested range not satisfiable",
                                      details=f"An offset of {lower} was requested, but there are only {total} rows.",
                                      headers={"Content-Range": f"*/{total}"})
            if len(page) < total:
                status = 206
        shown_total = "*" if total is None else str(total)
        content_range = (f"{lower}-{lower + len(page) - 1}/{shown_total}" if page and total != 0
                         else f"*/{shown_total}")
        return status, query.project(page), {"Content-Range": content_range}


@dataclasses.dataclass
class _Query:
    select: list[str] | None
    order: list[tuple[str, bool]]
    filters: list[tuple[str, str, str]]
    offset: int
    limit: int | None

    @classmethod
    def parse(cls, table: str, params: list[tuple[str, str]], columns: list[str]) -> _Query:
        select, order, filters, offset, limit = None, [], [], 0, None
        for key, value in params:
            if key == "select":
                select = None if value.strip() == "*" else [c.strip() for c in value.split(",")]
            elif key == "order":
                for term in value.split(","):
                    column, _, direction = term.partition(".")
                    order.append((column, direction.split(".")[0] == "desc"))
            elif key in {"offset", "limit"}:
                if not value.isdigit():
                    raise postgrest_error(400, "PGRST100", f'"failed to parse {key} parameter ({value})"')
                offset, limit = (int(value), limit) if key == "offset" else (offset, int(value))
            elif key in {"apikey", "columns", "on_conflict"}:
                continue
            else:
                operator, _, operand = value.partition(".")
                if operator not in _FILTER_OPERATORS:
                    raise postgrest_error(400, "PGRST100", f'"failed to parse filter ({value})"')
                filters.append((key, operator, operand))
        for column in [*(select or []), *(c for c, _ in order), *(c for c, _, _ in filters)]:
            if columns and column not in columns:
                raise postgrest_error(400, "42703", f"column {table}.{column} does not exist")
        return cls(select, order, filters, offset, limit)

    def apply(self, rows: list[Row], ids: list[int]) -> list[Row]:
        filters = list(self.filters)
        # Fast path for keyset paging: rows are kept sorted by id, so id bounds are a bisect.
        low, high = 0, len(rows)
        for column, operator, operand in self.filters:
            if column == "id" and operand.lstrip("-").isdigit() and operator != "neq":
                bound = int(operand)
                if operator in {"gt", "gte", "eq"}:
                    low = max(low, (bisect.bisect_right if operator == "gt" else bisect.bisect_left)(ids, bound))
                if operator in {"lt", "lte", "eq"}:
                    high = min(high, (bisect.bisect_left if operator == "lt" else bisect.bisect_right)(ids, bound))
                filters.remove((column, operator, operand))
        selected = rows[low:high]
        for column, operator, operand in filters:
            compare = _FILTER_OPERATORS[operator]
            selected = [row for row in selected if row[column] is not None
                        and compare(row[column], _coerce(operand, row[column]))]
        if not self.order:
            # PostgreSQL gives no order without ORDER BY: a client that forgets it must notice.
            return sorted(selected, key=lambda row: (row["id"] * 2654435761) % 2**32)
        if self.order == [("id", False)]:
            return selected
        for column, descending in reversed(self.order):
            selected = sorted(selected, key=lambda row: (row[column] is None, row[column] if row[column] is not None else 0),
                              reverse=descending)
        return selected

    def project(self, rows: list[Row]) -> list[Row]:
        if self.select is None:
            return rows
        return [{column: row[column] for column in self.select} for row in rows]


def _coerce(operand: str, sample: t.Any) -> t.Any:
    if isinstance(sample, bool):
        return operand.lower() == "true"
    if isinstance(sample, int):
        return int(operand)
    return operand


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer

    def log_message(self, format: str, *args: t.Any) -> None:
        """Keep test and pipeline output clean: the sandbox does not log requests."""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: t.Any, headers: dict[str, str] | None = None) -> None:
        self._count(status)
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _check_api_key(self) -> None:
        query = dict(parse_qsl(urlsplit(self.path).query))
        key = self.headers.get("apikey") or query.get("apikey")
        if not key:
            raise ApiError(401, {"message": "No API key found in request",
                                 "hint": "No `apikey` request header or url param was found."})
        if key != SANDBOX_API_KEY:
            raise ApiError(401, {"message": "Invalid API key",
                                 "hint": "Double check your Supabase `anon` or `service_role` API key."})

    def do_POST(self) -> None:
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        sandbox.stats.token_requests += 1
        try:
            self._check_api_key()
            if url.path != "/auth/v1/token":
                raise ApiError(404, {"code": 404, "error_code": "not_found", "msg": "Not Found"})
            grant = dict(parse_qsl(url.query)).get("grant_type")
            try:
                body = json.loads(raw or b"{}")
            except ValueError as exc:
                raise ApiError(400, {"code": "bad_json", "message": f"Could not parse request body as JSON: {exc}"}) from exc
            if grant == "password":
                if body.get("email") != SANDBOX_EMAIL or body.get("password") != SANDBOX_PASSWORD:
                    raise ApiError(400, {"code": "invalid_credentials", "message": "Invalid login credentials"})
                sandbox.stats.logins += 1
            elif grant == "refresh_token":
                sandbox.use_refresh_token(str(body.get("refresh_token")))
                sandbox.stats.refreshes += 1
            else:
                raise ApiError(400, {"code": "validation_failed", "message": "unsupported_grant_type"})
            self._send_json(200, sandbox.issue_session(), self._api_version_header())
        except ApiError as error:
            headers = {"x-sb-error-code": str(error.body.get("code")), **self._api_version_header(), **error.headers}
            self._send_json(error.status, self._auth_error_body(error), headers)

    def _api_version_header(self) -> dict[str, str]:
        """GoTrue answers in the API version the client asked for, and says which."""
        version = self.headers.get("X-Supabase-Api-Version")
        return {"X-Supabase-Api-Version": version} if version else {}

    def _auth_error_body(self, error: ApiError) -> dict[str, t.Any]:
        """GoTrue's error shape depends on the X-Supabase-Api-Version request header."""
        if error.status == 401 or "message" not in error.body or self.headers.get("X-Supabase-Api-Version"):
            return error.body
        return {"code": error.status, "error_code": error.body["code"], "msg": error.body["message"]}

    def do_GET(self) -> None:
        sandbox, faults = self.server.sandbox, self.server.sandbox.faults
        url = urlsplit(self.path)
        if not url.path.startswith("/rest/v1/"):
            self._send_json(404, {"message": "no Route matched with those values"})
            return
        sandbox.stats.reads += 1
        number = sandbox.stats.reads
        if action := faults.on_request.get(number):
            action(sandbox)
        if faults.latency:
            time.sleep(faults.latency)
        if faults.drop_every and number % faults.drop_every == 0:
            self._count(0)  # 0: no answer
            self.close_connection = True
            self.connection.shutdown(2)  # the peer sees the connection dropped mid-request
            return
        if faults.rate_limit_every and number % faults.rate_limit_every == 0:
            self._send_json(429, {"message": "Too many requests"}, {"Retry-After": str(faults.retry_after)})
            return
        if faults.error_every and number % faults.error_every == 0:
            self._send_server_error(faults.error_status, faults.retry_after)
            return
        try:
            self._check_api_key()
            sandbox.check_access_token(self.headers.get("Authorization"))
            status, rows, headers = sandbox.read(
                url.path.removeprefix("/rest/v1/"), parse_qsl(url.query, keep_blank_values=True),
                self.headers.get("Range"), self.headers.get("Prefer"))
            self._send_json(status, rows, headers)
        except ApiError as error:
            self._send_json(error.status, error.body, error.headers)

    def _count(self, status: int) -> None:
        stats = self.server.sandbox.stats
        stats.statuses[status] += 1
        if self.command == "GET":
            stats.read_log.append((time.monotonic(), status))

    def _send_server_error(self, status: int, retry_after: int) -> None:
        """A gateway-style failure: HTML, not JSON, as Cloudflare and load balancers send."""
        self._count(status)
        title = _CLOUDFLARE_TITLES.get(status, "Service Temporarily Unavailable")
        html = f"<!DOCTYPE html><html><head><title>{status}: {title}</title></head><body><h1>{title}</h1></body></html>"
        headers = {"Retry-After": str(retry_after)} if status == 503 else {}
        self._send(status, html.encode(), "text/html; charset=UTF-8", headers)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.sandbox = sandbox
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxHTTPServer:
        self._thread = threading.Thread(target=self.serve_forever, name="wiserock-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> SandboxHTTPServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
