"""Reading what a Supabase or PostgREST error response says, in one line."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class SourceDataError(Exception):
    """A row from the API holds a value the tap cannot represent faithfully."""


class SourceShapeError(Exception):
    """A table's columns or key are not what the run needs (changed, missing, unusable)."""


class SettingError(ValueError):
    """A setting the tap cannot work with, named in one line."""


def error_code(response: requests.Response) -> str | None:
    """The machine-readable error code (PostgREST `code`, GoTrue `error_code` or `code`)."""
    body = _json_body(response)
    code = body.get("error_code") or body.get("code") or response.headers.get("x-sb-error-code")
    return None if code is None else str(code)


def server_message(response: requests.Response) -> str:
    """The server's own words: the first of msg, message, error_description, error,
    else an HTML page's title, else the start of the body."""
    body = _json_body(response)
    for key in ("msg", "message", "error_description", "error"):
        if body.get(key):
            return str(body[key])
    if match := _HTML_TITLE.search(response.text or ""):
        return " ".join(match[1].split())
    return " ".join((response.text or response.reason or "").split())[:200]


def describe(response: requests.Response) -> str:
    """`HTTP 404 PGRST205: Could not find the table ...` (never the request's headers)."""
    code = error_code(response)
    status = f"HTTP {response.status_code}" + (f" {code}" if code and code != str(response.status_code) else "")
    return f"{status}: {server_message(response)}"


def _json_body(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
