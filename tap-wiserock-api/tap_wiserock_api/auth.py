"""Supabase Auth for the whole tap run: one login, renewed before it expires.

Supabase Auth wants a JSON body (singer-sdk's OAuthAuthenticator posts a form), and a
run outlives a token: the session renews itself shortly before `expires_at`, and again
when PostgREST answers 401 "JWT expired" (see `expire`).

Streams read key ranges from several threads: one lock makes a single login or renewal
serve them all (refresh tokens are single-use), and the login's own HTTP session is only
used under that lock, one request at a time.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError

from tap_wiserock_api.errors import describe, error_code

if TYPE_CHECKING:
    import logging

TOKEN_PATH = "/auth/v1/token"  # noqa: S105 - a URL path, not a secret
# Renew this long before expiry: a page in flight must not outlive its token.
RENEW_MARGIN_SECONDS = 60.0
RENEW_MARGIN_SHARE = 0.1


class SupabaseSession(requests.auth.AuthBase):
    """Adds `Authorization: Bearer <access token>` to each request, logging in lazily. Without
    email and password there is no login: the bearer is the API key, so requests run as the
    key's own role (the service-role key reads every row; the anon key, the anon role)."""

    def __init__(self, *, api_url: str, api_key: str, email: str | None, password: str | None,
                 timeout: float, user_agent: str, logger: logging.Logger) -> None:
        self._token_url = api_url.rstrip("/") + TOKEN_PATH
        self._api_key = api_key
        self._email = email
        self._password = password
        self._timeout = timeout
        self._logger = logger
        self._http = requests.Session()
        self._http.headers.update({"User-Agent": user_agent})
        self._access_token: str | None = None
        self._refresh_token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # Called again on every retry, so a retried request carries the current token.
        request.headers["Authorization"] = f"Bearer {self.access_token() if self._email else self._api_key}"
        return request

    def __repr__(self) -> str:
        return f"SupabaseSession({self._token_url!r})"  # never the secrets

    def access_token(self) -> str:
        with self._lock:
            return self._current_token()

    def _current_token(self) -> str:
        if self._access_token is None:
            self._grant("password", {"email": self._email or "", "password": self._password or ""})
        elif time.time() >= self._renew_at:
            self._renew()
        if self._access_token is None:  # _grant sets it or raises
            raise FatalAPIError("login failed: no access token")
        return self._access_token

    def expire(self, authorization: str | None) -> None:
        """The server said the token sent as `authorization` expired: renew it before the next
        request, unless another thread has renewed it already."""
        if not self._email:
            raise FatalAPIError("the API answered that the token expired, and without email and password there is "
                                "no login to renew (check api_key)")
        with self._lock:
            if self._access_token is not None and authorization == f"Bearer {self._access_token}":
                self._renew_at = 0.0

    def _renew(self) -> None:
        if self._refresh_token:
            try:
                self._grant("refresh_token", {"refresh_token": self._refresh_token})
                return
            except FatalAPIError:
                self._logger.info("Refresh token refused; logging in again with the password.")
        self._grant("password", {"email": self._email or "", "password": self._password or ""})

    def _grant(self, grant_type: str, body: dict[str, str]) -> None:
        response = self._http.post(
            self._token_url,
            params={"grant_type": grant_type},
            json=body,
            headers={"apikey": self._api_key, "X-Supabase-Api-Version": "2024-01-01"},
            timeout=self._timeout,
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise RetriableAPIError(f"login: {describe(response)}", response)
        if response.status_code >= 400:
            raise FatalAPIError(self._login_failure(response))
        session = response.json()
        try:
            self._access_token = session["access_token"]
            self._refresh_token = session.get("refresh_token")
            lifetime = float(session.get("expires_in") or 3600)
            expires_at = float(session.get("expires_at") or time.time() + lifetime)
        except (KeyError, TypeError, ValueError):
            raise FatalAPIError(f"login failed: unexpected answer from {self._token_url} (no access_token)") from None
        margin = min(RENEW_MARGIN_SECONDS, lifetime * RENEW_MARGIN_SHARE)
        self._renew_at = expires_at - margin
        self._logger.info("Logged in to Supabase Auth (%s grant); token valid for %.0f s.", grant_type, lifetime)

    def _login_failure(self, response: requests.Response) -> str:
        code = error_code(response)
        if code in {"invalid_credentials", "invalid_grant"}:
            reason = "invalid credentials (check email and password)"
        elif response.status_code == 401:
            reason = "API key rejected (check api_key)"
        else:
            reason = "the server refused the login"
        return f"login failed: {reason}: {describe(response)} from {self._token_url}"

