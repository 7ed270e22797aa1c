"""The PostgREST table stream: keyset paging read ahead in threads, error classification, backoff.

A table is read in key order by keyset paging (`id=gt.<last id>&order=id.asc`): it neither
skips nor repeats rows when rows are inserted or deleted during the read, and it never takes
a short page for the last one (the server's max-rows cap may be below `page_size`): a key
range ends at its first empty page. The next page is requested as soon as the current page's
last id is known, while the current page is converted. A large table is split into disjoint
key ranges read at once (`parallel_requests`), the last one open-ended; pages still come out
in key order (see prefetch.py).
"""

from __future__ import annotations

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

from tap_wiserock_api.batches import BatchFiles, plain_iso_instants
from tap_wiserock_api.errors import describe, error_code, server_message
from tap_wiserock_api.normalize import convert_page, converter_for, records_of
from tap_wiserock_api.prefetch import KeyRange, OrderedPrefetch, Page

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from backoff.types import Details
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context

    from tap_wiserock_api.auth import SupabaseSession
    from tap_wiserock_api.tap import TapWiseRockApi


JWT_EXPIRED_CODES = frozenset({"PGRST301", "PGRST303"})
MAX_RETRY_WAIT_SECONDS = 60.0
# A table is split into ranges of about this many pages, and only when it has at least twice
# that many. Small ranges keep the look-ahead (and its memory) small: the consumer reads one
# range while the next ones are read.
RANGE_PAGES = 4
# Response bodies read ahead and not yet converted, at most (plus one page per range). Decoded
# pages take about three times their bytes. At 100,000 notes, 8 MiB made RECORD mode's peak
# RSS 1.65x its value at 10,000; 4 MiB 1.26x, with the same speed at 50 ms latency.
PREFETCH_BUDGET_BYTES = 4 * 2**20
_decode_page = msgspec.json.Decoder().decode


class PostgrestStream(RESTStream["int | None"]):
    """A full-table read of one PostgREST table, ordered by its integer primary key."""

    primary_keys: t.ClassVar[list[str]] = ["id"]
    # convert_page builds every record to the schema already; conforming it again per
    # record is pure overhead.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapWiseRockApi) -> None:
        super().__init__(tap=tap)
        self.session = tap.session
        self.message_writer = tap.message_writer
        self._converters = {name: converter_for(prop) for name, prop in self.schema["properties"].items()}
        self._http = threading.local()  # one requests session per reader thread
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
    @override
    def http_headers(self) -> dict[str, str]:
        return {"apikey": self.config["api_key"], "Accept": "application/json", "User-Agent": self.user_agent}

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
    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict[str, t.Any]:
        key = self.primary_keys[0]
        params = {"select": ",".join(self.schema["properties"]), "order": f"{key}.asc",
                  "limit": self.config["page_size"]}
        if next_page_token is not None:
            params[key] = f"gt.{next_page_token}"
        return params

    @override
    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        where = f"reading table '{self.name}'"
        if status == 401 and self._says_jwt_expired(response):
            self.session.expire(response.request.headers.get("Authorization"))
            raise RetriableAPIError(f"access token expired {where}; renewing it", response)
        if status == 401:
            raise FatalAPIError(f"{describe(response)} {where} (check api_key)")
        if status == 404:
            raise FatalAPIError(f"table '{self.name}' not found: {describe(response)}")
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

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        for page in self.request_pages(context):
            yield from records_of(convert_page(page.rows, self._converters, self.name))
        # Only reached once every page has been read and every record written.
        self.message_writer.release_activate_version()

    @override
    def get_batches(self, batch_config: BatchConfig,
                    context: Context | None = None) -> t.Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Each page becomes part of a batch file in one step, column by column."""
        selected = [name for name in self.schema["properties"] if self.mask[("properties", name)]]
        files = BatchFiles(batch_config, max_bytes=self.config["batch_file_max_bytes"], tap=self.tap_name,
                           stream=self.name, properties={name: self.schema["properties"][name] for name in selected})
        parquet = files.format == "parquet"
        converters = {name: converter_for(self.schema["properties"][name], instants=parquet) for name in selected}
        fast = {name: plain_iso_instants for name in selected
                if parquet and self.schema["properties"][name].get("format") == "date-time"}
        with self.get_record_counter() as counter:
            try:
                for page in self.request_pages(context):
                    columns = convert_page(page.rows, converters, self.name, fast)
                    counter.increment(len(page.rows))
                    for url in files.add(columns, len(page.rows)):
                        yield batch_config.encoding, [url]
                for url in files.finish():
                    yield batch_config.encoding, [url]
            except BaseException:
                files.discard()
                raise
        # singer-sdk writes each BATCH message after this generator yields it: resumed here,
        # the last one is out, so ACTIVATE_VERSION now follows every batch of the stream.
        self.message_writer.release_activate_version()

    # -- reading -------------------------------------------------------------------
    def request_pages(self, context: Context | None) -> Iterator[Page]:
        """Every row of the table, a page at a time, in key order."""
        parallel = self.config["parallel_requests"]
        first, total = self._request_page(context, KeyRange(None, None), count="estimated" if parallel > 1 else None)
        if not first.rows:
            return
        ranges = self._plan_ranges(context, first, total, parallel)
        read_range = functools.partial(self._read_range, context)
        with OrderedPrefetch(ranges, read_range, workers=parallel, budget_bytes=PREFETCH_BUDGET_BYTES,
                             name=self.name) as pages:
            yield first  # converted while the readers already ask for the next pages
            yield from pages

    def _plan_ranges(self, context: Context | None, first: Page, total: int | None, parallel: int) -> list[KeyRange]:
        """The rest of the table as key ranges: one, or about RANGE_PAGES pages each, by the
        server's estimate of the row count and the key span (an uneven spread of keys makes
        some ranges longer, never wrong)."""
        key = self.primary_keys[0]
        last = first.rows[-1][key]
        per_page = len(first.rows)  # the server's cap, when it is below page_size
        pages_left = ((total or 0) - per_page) / per_page
        if parallel == 1 or pages_left < 2 * RANGE_PAGES:
            return [KeyRange(last, None)]
        top_rows = self._request_page(context, KeyRange(last, None), select=key, descending=True, limit=1)[0].rows
        if not top_rows:
            return [KeyRange(last, None)]
        count = math.ceil(pages_left / RANGE_PAGES)
        width = (top_rows[0][key] - last) / count
        inner = {last + math.floor(width * n) for n in range(1, count)} - {last}  # keys may be few and dense
        bounds = [last, *sorted(inner), None]
        return [KeyRange(lower, upper) for lower, upper in itertools.pairwise(bounds)]

    def _read_range(self, context: Context | None, key_range: KeyRange) -> Iterator[Page]:
        """Keyset paging within one range, until its first empty page. A bounded range asks the
        server to count what is left of it (cheap: an index range), and ends without that empty
        page when a page holds all of it."""
        bounded = key_range.upper is not None
        cursor = key_range.lower
        while True:
            page, left = self._request_page(context, KeyRange(cursor, key_range.upper), count="exact" if bounded else None)
            if not page.rows:
                return
            last = page.rows[-1][self.primary_keys[0]]
            # Checked because a filter the server ignored would repeat rows, never fail.
            if (cursor is not None and last <= cursor) or (bounded and last > key_range.upper):
                raise FatalAPIError(f"reading table '{self.name}': the server ignored the key filter "
                                    f"(asked for keys above {cursor} up to {key_range.upper}, got {last})")
            yield page
            if left is not None and left <= len(page.rows):
                return
            cursor = last

    def _request_page(self, context: Context | None, key_range: KeyRange, *, count: str | None = None,
                      select: str | None = None, descending: bool = False, limit: int | None = None,
                      ) -> tuple[Page, int | None]:
        """One page of keys above `key_range.lower` (and up to its `upper`); with `count`
        (PostgREST's exact, planned or estimated), also the number of rows in that key range."""
        key = self.primary_keys[0]
        params = list(self.get_url_params(context, key_range.lower).items())
        if select:
            params = [(name, value) for name, value in params if name not in {"select", "order", "limit"}]
            params += [("select", select), ("order", f"{key}.{'desc' if descending else 'asc'}"), ("limit", limit)]
        if key_range.upper is not None:
            params.append((key, f"lte.{key_range.upper}"))
        headers = self.http_headers | ({"Prefer": f"count={count}"} if count else {})
        request = self.build_prepared_request(method="GET", url=self.get_url(context), params=params, headers=headers)
        response = self._send(request)
        total = response.headers.get("Content-Range", "").rpartition("/")[2] if count else ""
        return Page(self.parse_response(response), len(response.content)), int(total) if total.isdigit() else None

    def _send_once(self, request: requests.PreparedRequest) -> requests.Response:
        """One attempt, authenticated anew (a retry carries the current token); `request_decorator`
        adds the retries. singer-sdk's own `_request` does the same but is private."""
        response = self.requests_session.send(self.authenticator(request), timeout=self.timeout)
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
            retry_after = response.headers.get("Retry-After") if response is not None else None
            if retry_after is not None and retry_after.strip().isdigit():
                wait = float(retry_after)
            else:
                wait = min(MAX_RETRY_WAIT_SECONDS, base * 2**attempt)
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


def _failure(exception: BaseException | None) -> str:
    if isinstance(exception, requests.RequestException) and not isinstance(exception, requests.HTTPError):
        return f"{type(exception).__name__}: connection failed or timed out"
    return str(exception)

