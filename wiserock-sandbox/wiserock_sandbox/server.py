"""A local Supabase-compatible server: Supabase Auth token grants and PostgREST reads.

It follows shared/reference/supabase-protocol.md: JSON login body, error bodies in each
documented shape, JWT-shaped expiring tokens, `limit`/`offset` and `Range` paging
intersected with a silent max-rows cap, `Prefer: count=...` with `Content-Range` and
200/206/416. Faults are switched on through `Faults`, for tests and benchmarks.

It is the API's stand-in for development, tests and benchmarks: the tap never imports it.
"""

from __future__ import annotations

import json
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from wiserock_sandbox.errors import ApiError
from wiserock_sandbox.state import API_KEYS, SANDBOX_EMAIL, SANDBOX_PASSWORD

if t.TYPE_CHECKING:
    from wiserock_sandbox.state import Sandbox

_CLOUDFLARE_TITLES = {
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    523: "Origin is unreachable",
    524: "A timeout occurred",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer
    _served = True  # False for a read refused on arrival (Faults.max_in_flight): it was never in flight

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

    def _send_json(self, status: int, payload: t.Any, headers: dict[str, str] | None = None, *,
                   encoded: str | None = None, content_type: str = "application/json") -> None:
        self._count(status)
        body = (json.dumps(payload, ensure_ascii=False) if encoded is None else encoded).encode()
        self._send(status, body, f"{content_type}; charset=utf-8", headers)

    def _check_api_key(self) -> None:
        query = dict(parse_qsl(urlsplit(self.path).query))
        key = self.headers.get("apikey") or query.get("apikey")
        if not key:
            raise ApiError(401, {"message": "No API key found in request",
                                 "hint": "No `apikey` request header or url param was found."})
        if key not in API_KEYS:
            raise ApiError(401, {"message": "Invalid API key",
                                 "hint": "Double check your Supabase `anon` or `service_role` API key."})

    def do_POST(self) -> None:
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        sandbox.stats.token_requests += 1
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)  # sleeping, not computing: latency costs no CPU
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
        if url.path.rstrip("/") == "/rest/v1":
            self._describe()
            return
        if not url.path.startswith("/rest/v1/"):
            self._send_json(404, {"message": "no Route matched with those values"})
            return
        number, self._served = sandbox.arrive()
        if action := faults.on_request.get(number):
            action(sandbox)
        if faults.latency:
            time.sleep(faults.latency)
        if not self._served:
            # The gateway's answer when too many reads are in flight: JSON, not PostgREST's shape.
            self._send_json(429, {"message": "Too many requests"}, {"Retry-After": str(faults.retry_after)})
            return
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
            role = sandbox.check_access_token(self.headers.get("Authorization"))
            status, body, headers = sandbox.read(
                url.path.removeprefix("/rest/v1/"), parse_qsl(url.query, keep_blank_values=True), self.headers.get("Range"),
                self.headers.get("Prefer"), role, self.headers.get("Accept-Profile"))
            self._send_json(status, None, headers, encoded=body)
        except ApiError as error:
            self._send_json(error.status, error.body, error.headers)

    def _describe(self) -> None:
        """The root, `GET /rest/v1/`: the OpenAPI description (not counted as a table read)."""
        sandbox = self.server.sandbox
        sandbox.stats.descriptions += 1
        if sandbox.faults.latency:
            time.sleep(sandbox.faults.latency)
        try:
            self._check_api_key()
            sandbox.check_access_token(self.headers.get("Authorization"))
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            profile = self.headers.get("Accept-Profile")
            description = sandbox.describe(self.headers.get("apikey") or "", host, profile)
            self._send_json(200, description, sandbox.profile_headers(sandbox.pick_schema(profile)),
                            content_type="application/openapi+json")
        except ApiError as error:
            self._send_json(error.status, error.body, error.headers)

    def _count(self, status: int) -> None:
        path = urlsplit(self.path).path
        read = self.command == "GET" and path.startswith("/rest/v1/") and path.rstrip("/") != "/rest/v1"
        self.server.sandbox.answered(status, read=read, served=self._served)

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
