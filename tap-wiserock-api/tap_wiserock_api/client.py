"""The PostgREST table stream's reading: keyset paging read ahead in threads, error
classification, backoff; and the OpenAPI description at the API's root.

A table is read in key order by keyset paging (keyset.py): it neither skips nor repeats rows
when rows are inserted or deleted during the read, and it never takes a short page for the
last one (the server's max-rows cap may be below `page_size`): a key range ends at its first
empty page. The next page is requested as soon as the current page's last key is known, while
the current page is converted. A table with a single integer key is split into disjoint key
ranges read at once (`parallel_requests`), the last one open-ended; pages still come out in
key order (see prefetch.py). Other keys are read as one ordered range.
"""

from __future__ import annotations

import concurrent.futures
import decimal
import functools
import itertools
import math
import random
import sys
import threading
import typing as t

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_wiserock_api.errors import SourceShapeError, describe, error_code, server_message
from tap_wiserock_api.prefetch import KeyRange, OrderedPrefetch, Page
from tap_wiserock_api.ranges import arithmetic_cuts
from tap_wiserock_api.throttle import PUSH_BACK_STATUSES, retry_after_seconds

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from backoff.types import Details
    from singer_sdk.helpers.types import Context

    from tap_wiserock_api.auth import SupabaseSession
    from tap_wiserock_api.keyset import Cursor, Keyset
    from tap_wiserock_api.tables import TableSetting
    from tap_wiserock_api.tap import TapWiseRockApi


JWT_EXPIRED_CODES = frozenset({"PGRST301", "PGRST303"})
MAX_RETRY_WAIT_SECONDS = 60.0
# A table is split into ranges of about this many pages, and only when it has at least twice
# that many. A range is read one page after another, and pages come out in key order, so the
# consumer waits for a range's pages in series: short ranges keep up (100,000 sample notes at
# 100 ms per request, parallel_requests 8, BATCH mode: 4 pages 4.2 s, 2 pages 3.1 s, 1 page
# 3.5 s; 2.95 s at no latency) and hold less read ahead (peak RSS 260 -> 246 MB). Shorter ones
# would cost more probes where the server names the cuts.
RANGE_PAGES = 2
# Cuts the server is asked to put in order per request, at most, and their values' characters
# (a URL of a few kB: gateways refuse long ones).
CUTS_PER_REQUEST = 40
CUT_CHARS_PER_REQUEST = 2000
# Response bodies read ahead and not yet converted, at most (plus one page per range): room for
# PREFETCH_PAGES_PER_REQUEST pages (the size of the first) per request in flight, within these
# bounds. Decoded pages take about three times their bytes. A fixed 4 MiB starved the readers
# of the sample's notes (pages of about 1 MB; 100,000 notes at 100 ms per request, BATCH mode):
# 7.6 s at parallel_requests 8, slower than at 4; with this rule 4.2 s. The upper bound keeps
# the tap's peak RSS at parallel_requests 16 where it was (291 MB; 16 MiB made it 337 MB).
PREFETCH_PAGES_PER_REQUEST = 2
PREFETCH_BUDGET_BYTES = (4 * 2**20, 8 * 2**20)
# Numbers as decimals: every digit the API sent (0.1 stays 0.1). msgspec keeps integers of any size.
_decode_page = msgspec.json.Decoder(float_hook=decimal.Decimal).decode
DESCRIPTION_MEDIA_TYPE = "application/openapi+json"
# Answers that mean "this key may not read the description" (the platform's 403 for the anon
# key, 401 where the gateway wants another key, 404 where the root is not exposed).
DESCRIPTION_REFUSED = frozenset({401, 403, 404})


class DescriptionRefusedError(FatalAPIError):
    """The API's root refused this key: the tables' shape must come from their rows."""


class PostgrestStream(RESTStream["tuple | None"]):
    """Reads one PostgREST table or view in key order; streams.py gives it its columns and key."""

    # The page conversion builds every record to the schema already; conforming it again per
    # record is pure overhead.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapWiseRockApi, setting: TableSetting) -> None:
        # Columns come from discovery (streams.py), which fills this schema in place.
        super().__init__(tap=tap, name=setting.name, schema={"type": "object", "properties": {}})
        self.tap = tap
        self.setting = setting
        self.session = tap.session
        self.message_writer = tap.message_writer
        self.keyset: Keyset | None = None
        self._http = threading.local()  # one requests session per reader thread
        self.in_flight = tap.in_flight
        self._send = self.request_decorator(self._send_once)

    @property
    @override
    def url_base(self) -> str:
        return self.config["api_url"].rstrip("/") + "/rest/v1"

    @property
    @override
    def path(self) -> str:  # type: ignore[override]
        return f"/{self.name}"

    @property
    def profile(self) -> str | None:
        """The PostgREST schema this table lives in (None: the API's default, its first exposed schema)."""
        return self.setting.schema or self.config.get("schema") or None

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        headers = {"apikey": self.config["api_key"], "Accept": "application/json", "User-Agent": self.user_agent}
        if self.profile is not None:  # PostgREST picks the schema of a read (and of its description) by this header
            headers["Accept-Profile"] = self.profile
        return headers

    @property
    @override
    def authenticator(self) -> SupabaseSession:
        return self.session

    @property
    @override
    def timeout(self) -> int:
        return self.config["request_timeout"]

    @property
    @override
    def requests_session(self) -> requests.Session:
        """A session per thread: requests sessions are not safe to share between threads."""
        session = getattr(self._http, "session", None)
        if session is None:
            session = self._http.session = requests.Session()
        return session

    @override
    def get_new_paginator(self) -> None:
        """No SDK paginator: `request_pages` pages through key ranges read ahead in threads."""
        return

    @override
    def get_url_params(self, context: Context | None, next_page_token: tuple | None) -> list[tuple[str, t.Any]]:
        """Every column (`select=*`: a column added since discovery shows, and fails the run, instead
        of being left out), in key order, after the key `next_page_token`."""
        keyset = self._keyset()
        return [("select", "*"), ("order", keyset.order), ("limit", self.config["page_size"]),
                *keyset.after(next_page_token)]

    def _keyset(self) -> Keyset:
        if self.keyset is None:
            raise RuntimeError(f"table '{self.name}' was read before its key was discovered")
        return self.keyset

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        describing = response.request.url is not None and response.request.url.split("?")[0].endswith("/rest/v1/")
        where = "reading the API's description" if describing else f"reading table '{self.name}'"
        if status == 401 and self._says_jwt_expired(response):
            self.session.expire(response.request.headers.get("Authorization"))
            raise RetriableAPIError(f"access token expired {where}; renewing it", response)
        if describing and status in DESCRIPTION_REFUSED:
            raise DescriptionRefusedError(describe(response))
        if status == 401:
            raise FatalAPIError(f"{describe(response)} {where} (check api_key)")
        if status == 404:
            raise FatalAPIError(f"table '{self.name}' not found: {describe(response)}")
        if status == 406 and error_code(response) == "PGRST106":  # a schema the API does not expose
            raise FatalAPIError(f"{describe(response)} {where} (check the schema setting: {self.profile!r})")
        if status in {408, 429} or status >= 500:
            raise RetriableAPIError(f"{describe(response)} {where}", response)
        raise FatalAPIError(f"{describe(response)} {where}")

    @staticmethod
    def _says_jwt_expired(response: requests.Response) -> bool:
        return (error_code(response) in JWT_EXPIRED_CODES and "expired" in server_message(response).lower()) or (
            "expired" in response.headers.get("WWW-Authenticate", "").lower())

    @override
    def parse_response(self, response: requests.Response) -> list[dict[str, t.Any]]:
        try:
            rows = _decode_page(response.content)
        except msgspec.DecodeError as exc:
            raise FatalAPIError(f"reading table '{self.name}': the answer is not valid JSON: {exc}") from None
        if not isinstance(rows, list):
            raise FatalAPIError(f"reading table '{self.name}': expected a JSON array, got {type(rows).__name__}")
        return rows

    # -- reading ------------------------------------------------------------------
    def request_pages(self, context: Context | None, first: tuple[Page, int | None] | None = None) -> Iterator[Page]:
        """Every row of the table, a page at a time, in key order. `first`: the first page and
        the server's row estimate, when discovery has read it already."""
        yield from self.start_pages(context, first)

    def start_pages(self, context: Context | None, first: tuple[Page, int | None] | None = None) -> TablePages:
        """Read the first page, plan the ranges and start their readers; the pages come from
        iterating the result (which stops the readers when it ends or is closed)."""
        parallel = self.config["parallel_requests"]
        page, total = first or self.request_page(context, KeyRange(None, None), count="estimated" if parallel > 1 else None)
        if not page.rows:
            return TablePages(None, None)
        ranges = self._plan_ranges(context, page, total, parallel)
        read_range = functools.partial(self._read_range, context)
        least, most = PREFETCH_BUDGET_BYTES
        budget = min(most, max(least, PREFETCH_PAGES_PER_REQUEST * parallel * page.size))
        prefetch = OrderedPrefetch(ranges, read_range, workers=parallel, budget_bytes=budget, name=self.name)
        return TablePages(page, prefetch.__enter__())

    def _plan_ranges(self, context: Context | None, first: Page, total: int | None, parallel: int) -> list[KeyRange]:
        """The rest of the table as key ranges: one, or about RANGE_PAGES pages each by the
        server's estimate of the row count. The cuts come from arithmetic on the key's type
        (ranges.py: an uneven spread of keys makes some ranges longer, never wrong), else from
        the server (keys at row offsets)."""
        keyset = self._keyset()
        last = keyset.cursor_of(first.rows[-1])
        per_page = len(first.rows)  # the server's cap, when it is below page_size
        rows_left = (total or 0) - per_page
        pages_left = rows_left / per_page
        if parallel == 1 or pages_left < 2 * RANGE_PAGES:
            return [KeyRange(last, None)]
        count = math.ceil(pages_left / RANGE_PAGES)
        cuts = self._arithmetic_cuts(context, last, count)
        if cuts is None:
            cuts = self._named_cuts(context, last, rows_left, count, parallel)
        bounds = [last, *cuts, None]
        return [KeyRange(lower, upper, inclusive=n > 0) for n, (lower, upper) in enumerate(itertools.pairwise(bounds))]

    def _arithmetic_cuts(self, context: Context | None, last: Cursor, count: int) -> list[Cursor] | None:
        """Cuts between the first page's last key and the table's highest key, or None when the
        key's type has no arithmetic (ranges.py)."""
        keyset = self._keyset()
        if len(keyset.key) != 1:
            return None
        pg_type = keyset.types[0] if keyset.types else None
        if arithmetic_cuts(keyset.kinds[0], pg_type, last[0], last[0], 2) is None:
            return None  # not cuttable: spare the request for the highest key
        top = self.request_page(context, KeyRange(last, None), keys_only=True, descending=True, limit=1)[0].rows
        if not top:
            return []
        cuts = arithmetic_cuts(keyset.kinds[0], pg_type, last[0], keyset.cursor_of(top[0])[0], count)
        return None if cuts is None else [(cut,) for cut in cuts]

    def _named_cuts(self, context: Context | None, last: Cursor, rows_left: int, count: int,
                    parallel: int) -> list[Cursor]:
        """Cuts the server names: the key at evenly spaced row offsets after the first page
        (asked for at once, within the in-flight limit), then put in the server's key order by
        the server itself, since the tap cannot compare text keys, and rows inserted or deleted
        between two of those requests could make a later offset name a lower key. A cut
        deleted meanwhile is dropped (its neighbours' ranges join)."""
        keyset = self._keyset()
        offsets = sorted({round(rows_left * n / count) for n in range(1, count)} - {0})

        def key_at(offset: int) -> Cursor | None:
            rows = self.request_page(context, KeyRange(last, None), keys_only=True, offset=offset, limit=1)[0].rows
            return keyset.cursor_of(rows[0]) if rows else None

        with concurrent.futures.ThreadPoolExecutor(parallel, thread_name_prefix=f"{self.name}-bounds") as pool:
            named = list(dict.fromkeys(cut for cut in pool.map(key_at, offsets) if cut is not None))
        cuts: list[Cursor] = []
        lower = last
        for chunk in _chunks(named):
            rows = self.request_page(context, KeyRange(lower, None), keys_only=True, limit=len(chunk),
                                     any_of=chunk)[0].rows
            ordered = [keyset.cursor_of(row) for row in rows]
            if not set(ordered) <= set(chunk):
                raise SourceShapeError(f"reading table '{self.name}': the server ignored the key filter (asked for "
                                       f"{len(chunk)} keys by value, got others)")
            cuts += ordered
            lower = cuts[-1] if cuts else lower
        return cuts

    def _read_range(self, context: Context | None, key_range: KeyRange) -> Iterator[Page]:
        """Keyset paging within one range, until its first empty page. A bounded range asks the
        server to count what is left of it (cheap: an index range), and ends without that empty
        page when a page holds all of it."""
        keyset = self._keyset()
        bounded = key_range.upper is not None
        cursor, inclusive = key_range.lower, key_range.inclusive
        while True:
            page, left = self.request_page(context, KeyRange(cursor, key_range.upper, inclusive),
                                           count="exact" if bounded else None)
            if not page.rows:
                return
            # Checked because a filter the server ignored would repeat rows, never fail.
            last = keyset.check_progress(cursor, page.rows, key_range.upper, inclusive=inclusive)
            yield page
            if left is not None and left <= len(page.rows):
                return
            cursor, inclusive = last, False

    def request_page(self, context: Context | None, key_range: KeyRange, *, count: str | None = None,
                     keys_only: bool = False, descending: bool = False, limit: int | None = None,
                     offset: int | None = None, any_of: t.Sequence[Cursor] = ()) -> tuple[Page, int | None]:
        """One page of the keys in `key_range`; with `count` (PostgREST's exact, planned or
        estimated), also the number of rows in that key range. `keys_only`, `descending`,
        `offset` and `any_of` (keys equal to one of these) serve the range planning."""
        keyset = self._keyset()
        params = [(name, value) for name, value in self.get_url_params(context, None)
                  if name not in {"select", "order", "limit"}]
        params += [("select", keyset.select if keys_only else "*"),
                   ("order", keyset.descending() if descending else keyset.order),
                   ("limit", limit or self.config["page_size"]), *([("offset", offset)] if offset else [])]
        params += keyset.filters(key_range.lower, key_range.upper, inclusive=key_range.inclusive, any_of=any_of)
        headers = self.http_headers | ({"Prefer": f"count={count}"} if count else {})
        request = self.build_prepared_request(method="GET", url=self.get_url(context), params=params, headers=headers)
        response = self._send(request)
        total = response.headers.get("Content-Range", "").rpartition("/")[2] if count else ""
        page = Page(self.parse_response(response), len(response.content))
        if not keys_only:
            self.check_columns(page.rows)
        return page, int(total) if total.isdigit() else None

    def check_columns(self, rows: list[dict[str, t.Any]]) -> None:
        """Called with each page read (streams.py checks that its columns are the discovered ones)."""

    def read_description(self) -> dict[str, t.Any] | None:
        """The API's OpenAPI description (`GET /rest/v1/`), or None when this key may not read it."""
        request = self.build_prepared_request(method="GET", url=self.url_base + "/",
                                              headers={**self.http_headers, "Accept": DESCRIPTION_MEDIA_TYPE})
        try:
            response = self._send(request)
        except DescriptionRefusedError as exc:
            self.logger.info("The API's description is not readable with this key (%s): columns and types come from "
                             "the rows.", exc)
            return None
        try:
            document = _decode_page(response.content)
        except msgspec.DecodeError:
            return None
        return document if isinstance(document, dict) else None

    def _send_once(self, request: requests.PreparedRequest) -> requests.Response:
        """One attempt, authenticated anew (a retry carries the current token), within the tap's
        in-flight limit (throttle.py), which a 429 or 503 lowers; `request_decorator` adds the
        retries. singer-sdk's own `_request` does the same but is private."""
        with self.in_flight.slot() as ticket:
            response = self.requests_session.send(self.authenticator(request), timeout=self.timeout)
        if response.status_code in PUSH_BACK_STATUSES:
            self.in_flight.pushed_back(ticket, retry_after_seconds(response.headers.get("Retry-After")))
        elif response.status_code < 400:
            self.in_flight.succeeded()
        self.validate_response(response)
        return response

    # -- retries -------------------------------------------------------------------
    @override
    def backoff_max_tries(self) -> int:
        return self.config["max_attempts"]

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Retry-After when the server sent one, else exponential from `retry_wait_ms`."""
        base = self.config["retry_wait_ms"] / 1000
        attempt = 0
        exception = yield  # type: ignore[misc]
        while True:
            response = getattr(exception, "response", None)
            retry_after = retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
            wait = retry_after if retry_after is not None else min(MAX_RETRY_WAIT_SECONDS, base * 2**attempt)
            attempt += 1
            exception = yield wait

    @override
    def backoff_jitter(self, value: float) -> float:
        # Never below the server's Retry-After; up to 10 % later so parallel runs spread out.
        return value * (1 + random.random() / 10)  # noqa: S311

    @override
    def backoff_handler(self, details: Details) -> None:
        self.logger.warning("Attempt %d failed (%s); retrying in %.1f s.",
                            details["tries"], _failure(details.get("exception")), details.get("wait") or 0)


class TablePages:
    """A table's pages once its read has started: the first page, then the ranges' pages."""

    def __init__(self, first: Page | None, prefetch: OrderedPrefetch | None) -> None:
        self._first = first
        self._prefetch = prefetch

    def __iter__(self) -> Iterator[Page]:
        if self._first is None:
            return
        try:
            yield self._first  # converted while the readers already ask for the next pages
            if self._prefetch is not None:
                yield from self._prefetch
        finally:
            self.close()

    def close(self) -> None:
        """Stop the readers (pages not yet taken are dropped)."""
        if self._prefetch is not None:
            self._prefetch.__exit__(None, None, None)


def _chunks(cuts: list[Cursor]) -> Iterator[list[Cursor]]:
    """The cuts in groups of at most CUTS_PER_REQUEST and CUT_CHARS_PER_REQUEST (one cut at least)."""
    chunk: list[Cursor] = []
    chars = 0
    for cut in cuts:
        size = sum(len(str(value)) for value in cut)
        if chunk and (len(chunk) == CUTS_PER_REQUEST or chars + size > CUT_CHARS_PER_REQUEST):
            yield chunk
            chunk, chars = [], 0
        chunk.append(cut)
        chars += size
    if chunk:
        yield chunk


def _failure(exception: BaseException | None) -> str:
    if isinstance(exception, requests.RequestException) and not isinstance(exception, requests.HTTPError):
        return f"{type(exception).__name__}: connection failed or timed out"
    return str(exception)

