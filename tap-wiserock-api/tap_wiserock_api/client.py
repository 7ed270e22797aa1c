"""The PostgREST table stream: keyset paging, error classification, backoff."""

from __future__ import annotations

import random
import sys
import typing as t

import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import BaseAPIPaginator

from tap_wiserock_api.errors import SourceDataError, describe, error_code, server_message
from tap_wiserock_api.normalize import converter_for

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from backoff.types import Details
    from singer_sdk.helpers.types import Context

    from tap_wiserock_api.auth import SupabaseSession
    from tap_wiserock_api.tap import TapWiseRockApi


JWT_EXPIRED_CODES = frozenset({"PGRST301", "PGRST303"})
MAX_RETRY_WAIT_SECONDS = 60.0


class KeysetPaginator(BaseAPIPaginator["int | None"]):
    """The next page is the rows whose key is above the last key of this page.

    Unlike offset paging it neither skips nor repeats rows when rows are inserted or
    deleted during the read, and it never trusts a short page to be the last one: the
    server's max-rows cap may be below the page size. It stops at the first empty page.
    """

    def __init__(self, last_key_of_page: t.Callable[[], int | None]) -> None:
        super().__init__(None)
        self._last_key_of_page = last_key_of_page

    @override
    def get_next(self, response: requests.Response) -> int | None:
        # The stream parsed this response already; parsing a page of large notes twice is waste.
        return self._last_key_of_page()


class PostgrestStream(RESTStream["int | None"]):
    """A full-table read of one PostgREST table, ordered by its integer primary key."""

    primary_keys: t.ClassVar[list[str]] = ["id"]
    # post_process builds every record to the schema already; conforming it again per
    # record is pure overhead.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapWiseRockApi) -> None:
        super().__init__(tap=tap)
        self.session = tap.session
        self.message_writer = tap.message_writer
        self._converters = {name: converter_for(prop) for name, prop in self.schema["properties"].items()}
        self._last_key_of_page: int | None = None

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

    @override
    def get_new_paginator(self) -> KeysetPaginator:
        return KeysetPaginator(lambda: self._last_key_of_page)

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
            self.session.expire()
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
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        rows = response.json()
        if not isinstance(rows, list):
            raise FatalAPIError(f"reading table '{self.name}': expected a JSON array, got {type(rows).__name__}")
        self._last_key_of_page = rows[-1][self.primary_keys[0]] if rows else None
        return rows

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        record = {}
        for column, convert in self._converters.items():
            try:
                record[column] = convert(row.get(column))
            except ValueError as exc:
                raise SourceDataError(f"table '{self.name}', row id {row.get('id')}, column {column}: {exc}") from None
        return record

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        yield from super().get_records(context)
        # Only reached once every page has been read and every record written.
        self.message_writer.release_activate_version()

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

