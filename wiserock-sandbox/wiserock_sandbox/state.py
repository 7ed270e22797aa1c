"""The sandbox's state: tables, issued tokens, switchable faults and counters."""

from __future__ import annotations

import base64
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

from wiserock_sandbox import openapi
from wiserock_sandbox.data import generate_tables
from wiserock_sandbox.errors import ApiError, postgrest_error
from wiserock_sandbox.query import Query
from wiserock_sandbox.schema import (
    INTEGER_TYPES,
    SAMPLE_DEFINITIONS,
    Column,
    Row,
    TableDef,
    dumps,
    fits,
    has_exact_numbers,
    load_definitions,
    sort_key,
)

SANDBOX_EMAIL = "analyst@wiserock.example"
SANDBOX_PASSWORD = "sandbox-password"  # noqa: S105 - a local sandbox's fixed credential
SANDBOX_API_KEY = "sandbox-anon-key"  # the project's anon (publishable) key
SANDBOX_SERVICE_KEY = "sandbox-service-role-key"  # its service-role (secret) key
API_KEYS = frozenset({SANDBOX_API_KEY, SANDBOX_SERVICE_KEY})
_JWT_SECRET = b"wiserock-sandbox-jwt-secret"
_RANGE_HEADER = re.compile(r"^(\d+)-(\d*)$")
RequestAction = t.Callable[["Sandbox"], None]


@dataclasses.dataclass
class Faults:
    """Switchable server behaviour. Counters apply to REST reads (`/rest/v1/...`) only;
    `latency` applies to every request."""

    max_rows: int = 1000
    token_lifetime: int = 3600
    jwt_expired_code: str = "PGRST303"  # PostgREST >= 13; PGRST301 on older servers
    rate_limit_every: int = 0  # answer every Nth read with 429 and Retry-After
    retry_after: int = 1
    error_every: int = 0  # answer every Nth read with `error_status`
    error_status: int = 503
    drop_every: int = 0  # close the connection without answering every Nth read
    latency: float = 0.0  # seconds slept before answering any request (a remote project's round trip)
    # Run an action (delete rows, expire tokens, ...) just before serving read number N.
    on_request: dict[int, RequestAction] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Stats:
    logins: int = 0
    refreshes: int = 0
    reads: int = 0
    token_requests: int = 0
    descriptions: int = 0  # requests for the OpenAPI root
    read_log: list[tuple[float, int]] = dataclasses.field(default_factory=list)  # (time answered, status)
    read_arrivals: list[float] = dataclasses.field(default_factory=list)  # time.monotonic() as each read came in
    reads_in_flight: int = 0
    max_reads_in_flight: int = 0  # the most reads being served at once
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    issued_tokens: list[str] = dataclasses.field(default_factory=list)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sandbox:
    """The sandbox's state: tables, issued tokens, faults and counters."""

    def __init__(self, *, seed: int = 7, users: int = 2500, notes: int = 12000,
                 faults: Faults | None = None, tables: t.Sequence[tuple[TableDef, list[Row] | None]] | None = None) -> None:
        """The sample tables (`users` and `notes` rows from `seed`), or the given (definition, rows) pairs."""
        self.faults = faults or Faults()
        self.stats = Stats()
        self.user_id = str(uuid.UUID(int=seed))
        self._lock = threading.Lock()
        self._defs: dict[str, TableDef] = {}
        self._tables: dict[str, list[Row]] = {}
        self._keys: dict[str, list[t.Any] | None] = {}
        sample = tables is None
        if tables is None:
            generated = generate_tables(seed, users, notes)
            tables = [(definition, generated[definition.name]) for definition, _ in load_definitions(SAMPLE_DEFINITIONS)]
        for definition, rows in tables:
            self.create_table(definition, rows or [], check=not sample)  # the generator's rows fit by construction
        self._refresh_tokens: dict[str, bool] = {}  # token -> already used
        self._revoked: set[str] = set()

    # -- tables and data, for tests and actions ------------------------------------------
    def create_table(self, definition: TableDef, rows: t.Iterable[Row] = (), *, check: bool = True) -> None:
        """Add (or replace) a table; `check` verifies that each value is one its column type can render.
        A view (`TableDef.view`) takes no rows: it shows its table's."""
        with self._lock:
            self._defs[definition.name] = definition
            self._tables[definition.name] = []
            self._keys[definition.name] = None
        if definition.view_of is not None:
            rows = self._view_rows(definition)
        self.replace_rows(definition.name, rows, check=check)

    def _view_rows(self, view: TableDef) -> list[Row]:
        return [{name: row[name] for name in view.names} for row in self.rows(t.cast("str", view.view_of))
                if view.shows(row)]

    def definition(self, table: str) -> TableDef:
        with self._lock:
            return self._defs[table]

    def definitions(self) -> list[TableDef]:
        with self._lock:
            return list(self._defs.values())

    def rows(self, table: str) -> list[Row]:
        with self._lock:
            return [dict(row) for row in self._tables[table]]

    def replace_rows(self, table: str, rows: t.Iterable[Row], *, check: bool = False) -> None:
        """Store rows in primary-key order; every column of the table is in every row (null when missing)."""
        definition = self.definition(table)
        names = definition.names
        complete = []
        for row in rows:
            unknown = set(row) - set(names)
            if unknown:
                raise ValueError(f"table {table} has no column {sorted(unknown)}")
            full = {name: row.get(name) for name in names}
            if check:
                for column in definition.columns:
                    if not fits(column, full[column.name]):
                        raise ValueError(f"table {table}, column {column.name} ({column.type}): {full[column.name]!r}")
            complete.append(full)
        key = [definition.column(name) for name in definition.primary_key]
        if key:
            complete.sort(key=lambda row: tuple(sort_key(column, row[column.name]) for column in key))
        fast = len(key) == 1 and key[0].base_type in INTEGER_TYPES
        with self._lock:
            self._tables[table] = complete
            self._keys[table] = [row[key[0].name] for row in complete] if fast else None
            views = [view for view in self._defs.values() if view.view_of == table]
        for view in views:  # a view shows the rows as they are now
            self.replace_rows(view.name, self._view_rows(view))

    def _key_of(self, table: str, row: Row) -> t.Any:
        names = self.definition(table).primary_key
        return row[names[0]] if len(names) == 1 else tuple(row[name] for name in names)

    def delete_rows(self, table: str, keys: t.Iterable[t.Any]) -> None:
        """Delete rows by primary key (a value, or a tuple for a composite key)."""
        doomed = set(keys)
        self.replace_rows(table, [row for row in self.rows(table) if self._key_of(table, row) not in doomed])

    def insert_rows(self, table: str, rows: t.Iterable[Row]) -> None:
        self.replace_rows(table, [*self.rows(table), *rows])

    def drop_table(self, table: str) -> None:
        with self._lock:
            del self._tables[table], self._keys[table], self._defs[table]

    def add_column(self, table: str, column: Column) -> None:
        """ALTER TABLE ... ADD COLUMN: every row gets it, null."""
        definition = self.definition(table)
        self.create_table(dataclasses.replace(definition, columns=(*definition.columns, column)), self.rows(table),
                          check=False)

    def drop_column(self, table: str, name: str) -> None:
        definition = self.definition(table)
        kept = tuple(column for column in definition.columns if column.name != name)
        rows = [{key: value for key, value in row.items() if key != name} for row in self.rows(table)]
        self.create_table(dataclasses.replace(definition, columns=kept), rows, check=False)

    def set_rls_without_policy(self, table: str, on: bool = True) -> None:
        """Row Level Security on with no policy: anon and authenticated users read no rows."""
        with self._lock:
            self._defs[table] = dataclasses.replace(self._defs[table], rls_without_policy=on)

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

    def check_access_token(self, authorization: str | None) -> str:
        """The database role a request runs as: `service_role` with the service key as bearer,
        `authenticated` with a valid user token; the anon role is refused, as on a project
        with anonymous access disabled."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token == SANDBOX_SERVICE_KEY:
            return "service_role"
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
        return "authenticated"

    def describe(self, api_key: str, host: str) -> dict[str, t.Any]:
        """The OpenAPI root: with the service-role key the description, with the anon key 403,
        as the platform answers since the root was restricted to secret keys."""
        if api_key != SANDBOX_SERVICE_KEY:
            raise postgrest_error(403, "42501", "permission denied for the OpenAPI description",
                                  hint="Only the service_role or a secret API key may read the schema description")
        return openapi.describe(self.definitions(), host)

    # -- PostgREST reads -------------------------------------------------------------
    def answered(self, status: int, *, read: bool) -> None:
        """Count an answer (status 0: the connection was dropped unanswered)."""
        with self._lock:
            self.stats.statuses[status] += 1
            if read:
                self.stats.read_log.append((time.monotonic(), status))
                self.stats.reads_in_flight -= 1

    def arrive(self) -> int:
        """Number an incoming read (1, 2, ...) and note when it came in; safe across threads."""
        with self._lock:
            self.stats.reads += 1
            self.stats.read_arrivals.append(time.monotonic())
            self.stats.reads_in_flight += 1
            self.stats.max_reads_in_flight = max(self.stats.max_reads_in_flight, self.stats.reads_in_flight)
            return self.stats.reads

    def read(self, table: str, params: list[tuple[str, str]], range_header: str | None,
             prefer: str | None, role: str = "authenticated") -> tuple[int, str, dict[str, str]]:
        """A GET of a table as `role`: the status, the JSON body and headers."""
        with self._lock:
            if table not in self._tables:
                close = [name for name in self._tables if name.rstrip("s") == table.rstrip("s")]
                raise postgrest_error(
                    404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache",
                    hint=f"Perhaps you meant the table 'public.{close[0]}'" if close else None)
            definition, rows, keys = self._defs[table], self._tables[table], self._keys[table]
        if definition.rls_without_policy and role != "service_role":
            rows, keys = [], [] if keys is not None else None  # RLS: no policy, no rows, no error
        query = Query.parse(definition, params)
        selected = query.apply(definition, rows, keys)
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
        total = len(selected) if _counts(prefer) else None
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
        page = query.project(page)
        body = dumps(page) if has_exact_numbers(definition) else json.dumps(page, ensure_ascii=False)
        return status, body, {"Content-Range": content_range}


def _counts(prefer: str | None) -> bool:
    """`Prefer: count=exact|planned|estimated`. The sandbox has no planner: every count is exact,
    which is what PostgREST's `estimated` also gives for small results."""
    return bool(prefer) and any(f"count={kind}" in prefer for kind in ("exact", "planned", "estimated"))
