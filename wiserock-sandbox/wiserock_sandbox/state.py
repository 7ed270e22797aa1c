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
from wiserock_sandbox.query import KeyIndex, Query
from wiserock_sandbox.schema import (
    SAMPLE_DEFINITIONS,
    Column,
    Row,
    TableDef,
    dumps,
    fits,
    holds_exact_numbers,
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
NOTE_KEYS = ("bigint", "uuid")  # the sample note table's key type


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
    # Reads served at once: one arriving while this many are being served gets 429 and Retry-After
    # (`retry_after`), as from a hosted project's gateway; 0: no limit.
    max_in_flight: int = 0
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
    refused_in_flight: int = 0  # reads answered 429 because `Faults.max_in_flight` were being served
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    issued_tokens: list[str] = dataclasses.field(default_factory=list)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sandbox:
    """The sandbox's state: tables, issued tokens, faults and counters."""

    def __init__(self, *, seed: int = 7, users: int = 2500, notes: int = 12000,
                 faults: Faults | None = None, tables: t.Sequence[tuple[TableDef, list[Row] | None]] | None = None,
                 note_key: str = "bigint", schemas: t.Sequence[str] | None = None) -> None:
        """The sample tables (`users` and `notes` rows from `seed`, the notes keyed by `note_key`:
        bigint or uuid), or the given (definition, rows) pairs. `schemas`: the exposed schemas, the
        first the default (PostgREST's db-schemas); by default `public`, then every other schema
        a table names."""
        if note_key not in NOTE_KEYS:
            raise ValueError(f"note_key must be one of {', '.join(NOTE_KEYS)}, not {note_key!r}")
        self.faults = faults or Faults()
        self.stats = Stats()
        self.user_id = str(uuid.UUID(int=seed))
        self._lock = threading.Lock()
        self._schemas = list(schemas) if schemas else None
        # By qualified name (schema.table): the definition, the rows in key order, their key index,
        # and whether any row holds a Decimal (see holds_exact_numbers).
        self._defs: dict[str, TableDef] = {}
        self._tables: dict[str, list[Row]] = {}
        self._index: dict[str, KeyIndex | None] = {}
        self._exact: dict[str, bool] = {}
        sample = tables is None
        if tables is None:
            generated = generate_tables(seed, users, notes, note_key=note_key)
            tables = [(definition, generated[definition.name]) for definition in _sample_definitions(note_key)]
        for definition, rows in tables:
            self.create_table(definition, rows or [], check=not sample)  # the generator's rows fit by construction
        self._refresh_tokens: dict[str, bool] = {}  # token -> already used
        self._revoked: set[str] = set()

    # -- tables and data, for tests and actions ------------------------------------------
    # Every method that names a table takes its schema as `schema` (`public` unless said).
    def create_table(self, definition: TableDef, rows: t.Iterable[Row] = (), *, check: bool = True) -> None:
        """Add (or replace) a table in its schema; `check` verifies that each value is one its column
        type can render. A view (`TableDef.view`) takes no rows: it shows its table's."""
        with self._lock:
            self._defs[definition.qualified] = definition
            self._tables[definition.qualified] = []
            self._index[definition.qualified] = None
            self._exact[definition.qualified] = False
        if definition.view_of is not None:
            rows = self._view_rows(definition)
        self.replace_rows(definition.name, rows, check=check, schema=definition.schema)

    def _view_rows(self, view: TableDef) -> list[Row]:
        return [{name: row[name] for name in view.names} for row in self.rows(t.cast("str", view.view_of), schema=view.schema)
                if view.shows(row)]

    def definition(self, table: str, *, schema: str = "public") -> TableDef:
        with self._lock:
            return self._defs[f"{schema}.{table}"]

    def definitions(self, schema: str | None = None) -> list[TableDef]:
        """The tables and views of one schema, or of all."""
        with self._lock:
            return [table for table in self._defs.values() if schema is None or table.schema == schema]

    def exposed_schemas(self) -> list[str]:
        """The schemas reads may pick with Accept-Profile, the default first."""
        if self._schemas:
            return list(self._schemas)
        found = dict.fromkeys(["public", *(table.schema for table in self.definitions())])
        return list(found)

    def rows(self, table: str, *, schema: str = "public") -> list[Row]:
        with self._lock:
            return [dict(row) for row in self._tables[f"{schema}.{table}"]]

    def replace_rows(self, table: str, rows: t.Iterable[Row], *, check: bool = False, schema: str = "public") -> None:
        """Store rows in primary-key order; every column of the table is in every row (null when missing)."""
        definition = self.definition(table, schema=schema)
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
        index = None
        if key:
            # Each row's sort key computed once: the order, and the bisects of every later read.
            keyed = sorted(((tuple(sort_key(column, row[column.name]) for column in key), row) for row in complete),
                           key=lambda pair: pair[0])
            complete = [row for _, row in keyed]
            index = KeyIndex(tuple(key), [sort_keys[0] for sort_keys, _ in keyed])
        exact = holds_exact_numbers(definition, complete)
        with self._lock:
            self._tables[definition.qualified] = complete
            self._index[definition.qualified] = index
            self._exact[definition.qualified] = exact
            views = [view for view in self._defs.values() if view.view_of == table and view.schema == schema]
        for view in views:  # a view shows the rows as they are now
            self.replace_rows(view.name, self._view_rows(view), schema=schema)

    def _key_of(self, definition: TableDef, row: Row) -> t.Any:
        names = definition.primary_key
        return row[names[0]] if len(names) == 1 else tuple(row[name] for name in names)

    def delete_rows(self, table: str, keys: t.Iterable[t.Any], *, schema: str = "public") -> None:
        """Delete rows by primary key (a value, or a tuple for a composite key)."""
        doomed, definition = set(keys), self.definition(table, schema=schema)
        self.replace_rows(table, [row for row in self.rows(table, schema=schema) if self._key_of(definition, row) not in doomed],
                          schema=schema)

    def insert_rows(self, table: str, rows: t.Iterable[Row], *, schema: str = "public") -> None:
        self.replace_rows(table, [*self.rows(table, schema=schema), *rows], schema=schema)

    def drop_table(self, table: str, *, schema: str = "public") -> None:
        name = f"{schema}.{table}"
        with self._lock:
            del self._tables[name], self._index[name], self._exact[name], self._defs[name]

    def add_column(self, table: str, column: Column, *, schema: str = "public") -> None:
        """ALTER TABLE ... ADD COLUMN: every row gets it, null."""
        definition = self.definition(table, schema=schema)
        self.create_table(dataclasses.replace(definition, columns=(*definition.columns, column)),
                          self.rows(table, schema=schema), check=False)

    def drop_column(self, table: str, name: str, *, schema: str = "public") -> None:
        definition = self.definition(table, schema=schema)
        kept = tuple(column for column in definition.columns if column.name != name)
        rows = [{key: value for key, value in row.items() if key != name} for row in self.rows(table, schema=schema)]
        self.create_table(dataclasses.replace(definition, columns=kept), rows, check=False)

    def set_rls_without_policy(self, table: str, on: bool = True, *, schema: str = "public") -> None:
        """Row Level Security on with no policy: anon and authenticated users read no rows."""
        with self._lock:
            name = f"{schema}.{table}"
            self._defs[name] = dataclasses.replace(self._defs[name], rls_without_policy=on)

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

    def describe(self, api_key: str, host: str, profile: str | None = None) -> dict[str, t.Any]:
        """The OpenAPI root of the schema `profile` picks (Accept-Profile; the default schema when
        None): with the service-role key the description, with the anon key 403, as the platform
        answers since the root was restricted to secret keys."""
        if api_key != SANDBOX_SERVICE_KEY:
            raise postgrest_error(403, "42501", "permission denied for the OpenAPI description",
                                  hint="Only the service_role or a secret API key may read the schema description")
        schema = self.pick_schema(profile)
        return openapi.describe(self.definitions(schema), host, schema)

    def pick_schema(self, profile: str | None) -> str:
        """The schema a request's Accept-Profile names (the default one without it); PostgREST's
        406 PGRST106 for one that is not exposed (v12/v13 wording; later versions say
        "Invalid schema: <name>" with the list in the hint)."""
        exposed = self.exposed_schemas()
        if profile is None:
            return exposed[0]
        if profile not in exposed:
            raise postgrest_error(406, "PGRST106", f"The schema must be one of the following: {', '.join(exposed)}")
        return profile

    def profile_headers(self, schema: str) -> dict[str, str]:
        """PostgREST names the schema it answered from (Content-Profile) when it serves several."""
        return {"Content-Profile": schema} if len(self.exposed_schemas()) > 1 else {}

    # -- PostgREST reads -------------------------------------------------------------
    def answered(self, status: int, *, read: bool, served: bool = True) -> None:
        """Count an answer (status 0: the connection was dropped unanswered); `served`: a read that
        was admitted (counted in flight), not refused on arrival."""
        with self._lock:
            self.stats.statuses[status] += 1
            if read:
                self.stats.read_log.append((time.monotonic(), status))
                if served:
                    self.stats.reads_in_flight -= 1

    def arrive(self) -> tuple[int, bool]:
        """Number an incoming read (1, 2, ...), note when it came in, and whether it is served:
        False when `Faults.max_in_flight` reads are being served already. Safe across threads."""
        with self._lock:
            self.stats.reads += 1
            self.stats.read_arrivals.append(time.monotonic())
            limit = self.faults.max_in_flight
            if limit and self.stats.reads_in_flight >= limit:
                self.stats.refused_in_flight += 1
                return self.stats.reads, False
            self.stats.reads_in_flight += 1
            self.stats.max_reads_in_flight = max(self.stats.max_reads_in_flight, self.stats.reads_in_flight)
            return self.stats.reads, True

    def read(self, table: str, params: list[tuple[str, str]], range_header: str | None,
             prefer: str | None, role: str = "authenticated", profile: str | None = None,
             ) -> tuple[int, str, dict[str, str]]:
        """A GET of a table as `role`, in the schema `profile` picks: the status, the JSON body and headers."""
        schema = self.pick_schema(profile)
        name = f"{schema}.{table}"
        with self._lock:
            if name not in self._tables:
                close = [known.name for known in self._defs.values()
                         if known.schema == schema and known.name.rstrip("s") == table.rstrip("s")]
                raise postgrest_error(
                    404, "PGRST205", f"Could not find the table '{name}' in the schema cache",
                    hint=f"Perhaps you meant the table '{schema}.{close[0]}'" if close else None)
            definition, rows, index, exact = self._defs[name], self._tables[name], self._index[name], self._exact[name]
        if definition.rls_without_policy and role != "service_role":
            rows, index = [], None  # RLS: no policy, no rows, no error
        query = Query.parse(definition, params)
        selected = query.apply(definition, rows, index)
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
        page = selected.window(lower, upper + 1)
        total = selected.count() if _counts(prefer) else None
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
        body = dumps(page) if exact else json.dumps(page, ensure_ascii=False)
        return status, body, {"Content-Range": content_range, **self.profile_headers(schema)}


def _sample_definitions(note_key: str) -> list[TableDef]:
    """The sample's user and note tables, the note's key of type `note_key`."""
    definitions = [definition for definition, _ in load_definitions(SAMPLE_DEFINITIONS)]
    return [dataclasses.replace(definition, columns=tuple(
        dataclasses.replace(column, type=note_key) if column.primary_key else column for column in definition.columns))
        if definition.name == "note" else definition for definition in definitions]


def _counts(prefer: str | None) -> bool:
    """`Prefer: count=exact|planned|estimated`. The sandbox has no planner: every count is exact,
    which is what PostgREST's `estimated` also gives for small results."""
    return bool(prefer) and any(f"count={kind}" in prefer for kind in ("exact", "planned", "estimated"))
