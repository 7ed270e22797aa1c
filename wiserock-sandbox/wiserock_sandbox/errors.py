"""The error answers of Supabase Auth and PostgREST."""

from __future__ import annotations

import typing as t


class ApiError(Exception):
    """An HTTP error answer: status, JSON body and extra headers."""

    def __init__(self, status: int, body: dict[str, t.Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status, self.body, self.headers = status, body, headers or {}


def postgrest_error(status: int, code: str, message: str, details: str | None = None,
                    hint: str | None = None, headers: dict[str, str] | None = None) -> ApiError:
    """PostgREST's error body always carries these four keys (null allowed)."""
    return ApiError(status, {"code": code, "details": details, "hint": hint, "message": message}, headers)
