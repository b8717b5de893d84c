"""What stands between the network and the endpoints (a plain ASGI middleware, outside every other
one, so streamed answers pass through untouched and every answer, a 500 included, is counted and
carries the security headers):

- Host must be loopback, the bound address, or listed in serve.allowed_hosts: a DNS-rebinding page
  (evil.example resolving to 127.0.0.1) sends its own name as Host and is refused (`forbidden`);
- a POST (or any method that changes state) carrying an Origin must come from the server's own
  origin or serve.allowed_origins: a cross-site form or fetch is refused (`forbidden`); so is a POST
  whose Content-Type is one a browser may send cross-site without asking (form, text, multipart);
- a CORS preflight (OPTIONS with Access-Control-Request-Method) from an origin not in
  serve.allowed_origins is `forbidden`; one from a listed origin is answered by Starlette's
  CORSMiddleware (inside this one), which also adds Access-Control-Allow-Origin and Vary: Origin to
  their answers. No origin is listed by default: no CORS at all;
- the body: a Content-Length over serve.max_body_bytes is `request_too_large` before a byte is read,
  and a chunked body is counted as it arrives. (A negative or non-numeric Content-Length never gets
  here: the HTTP parser refuses it, answered in the same JSON shape by lane/serve/protocol.py.)
- the training endpoints need `Authorization: Bearer <token>` (`require_token`); with no token
  configured they are refused (`forbidden`), never open.

An exception no handler took becomes `internal_error` (500, JSON, logged); a client that left before
its answer (speech.ClientGone) is counted as abandoned with status 499 (nothing is sent). Every
refusal has the error shape of its route (lane/serve/errors.py). With --allow-unpromoted, every
answer carries `X-Voice-Lane-Unpromoted: true`.
"""

from __future__ import annotations

import hmac
import re
import socket
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import ClientDisconnect

from ..core.reasons import LaneError
from .errors import error_body, error_headers, http_status
from .metrics import Metrics, endpoint_label
from .settings import ServeSettings
from .speech import ClientGone

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DIGITS = re.compile(r"[0-9]{1,18}")
LOOPBACK = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CROSS_SITE_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
CLIENT_CLOSED = 499  # nginx's "client closed request": counted, never sent


class BodyTooLarge(LaneError):
    def __init__(self, limit: int) -> None:
        super().__init__("request_too_large", f"request body over {limit} bytes")


def allowed_hosts(settings: ServeSettings) -> set[str]:
    hosts = {*LOOPBACK, *(h.lower() for h in settings.allowed_hosts)}
    if settings.host in ("0.0.0.0", "::", ""):
        hosts |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    else:
        hosts.add(settings.host.lower().strip("[]"))
    return hosts


def host_name(host_header: str) -> str:
    """The name part of a Host header ("[::1]:8080" -> "::1", "Example.org:80" -> "example.org")."""
    try:
        return (urlsplit(f"//{host_header}").hostname or "").lower()
    except ValueError:  # "[::1" and the like
        return ""


def _origin_check(scope: Scope, headers: dict[str, list[str]], settings: ServeSettings, host: str) -> LaneError | None:
    origins = headers.get("origin") or []
    origin = origins[0] if origins else None
    if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
        if origin not in settings.allowed_origins:
            return LaneError("forbidden", f"no cross-origin access for Origin {origin!r} (serve.allowed_origins)")
        return None
    if scope["method"] in SAFE_METHODS:
        return None
    if origin is not None and origin not in (f"{scope.get('scheme', 'http')}://{host}", *settings.allowed_origins):
        return LaneError("forbidden", f"cross-origin request from Origin {origin!r} refused")
    if (headers.get("sec-fetch-site") or [""])[0] == "cross-site" and origin is None:
        return LaneError("forbidden", "cross-site request refused")
    ctype = (headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    if ctype in CROSS_SITE_TYPES:
        return LaneError("request_invalid", f"Content-Type {ctype} is not accepted: send application/json")
    return None


def _check(scope: Scope, headers: dict[str, list[str]], settings: ServeSettings, hosts: set[str]) -> LaneError | None:
    host = headers.get("host", [])
    if len(host) != 1:
        return LaneError("forbidden", "exactly one Host header is required")
    if "*" not in hosts and host_name(host[0]) not in hosts:
        return LaneError("forbidden", f"Host {host[0]!r} is not served here (DNS rebinding protection; "
                         "add it to serve.allowed_hosts)")
    refusal = _origin_check(scope, headers, settings, host[0])
    if refusal is not None:
        return refusal
    length = headers.get("content-length")
    if length and (len(length) != 1 or not DIGITS.fullmatch(length[0].strip())):
        return LaneError("request_invalid", f"invalid Content-Length {length!r}")
    if length and int(length[0]) > settings.max_body_bytes:
        return BodyTooLarge(settings.max_body_bytes)
    return None


class Guard:
    """The ASGI middleware described above."""

    def __init__(self, app: ASGIApp, settings: ServeSettings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.hosts = allowed_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers: dict[str, list[str]] = {}
        for k, v in scope.get("headers") or []:
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        status = [0, 0]  # the status sent, and whether the answer was sent to its end

        async def send_out(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                extra = list(SECURITY_HEADERS)
                if self.settings.allow_unpromoted:
                    extra.append((b"x-voice-lane-unpromoted", b"true"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                status[1] = 1
                self.metrics.answered(scope["path"], scope["method"], status[0], time.perf_counter() - t0)

        refusal = _check(scope, headers, self.settings, self.hosts)
        if refusal is not None:
            self.metrics.rejected.labels("guard", refusal.code).inc()
            await respond(send_out, refusal, self.metrics, scope["path"])
            return
        try:
            await self.app(scope, self._limited(receive), send_out)
            if status[0] and not status[1]:  # a streamed answer the client left (speech.body counted it)
                self.metrics.answered(scope["path"], scope["method"], CLIENT_CLOSED, time.perf_counter() - t0)
        except (ClientGone, ClientDisconnect):
            self._gone(scope, t0)
        except Exception as exc:
            self._failed(scope, exc)
            if status[0]:
                raise  # the answer has started: the server closes the connection
            await respond(send_out, LaneError("internal_error", f"{type(exc).__name__}: {exc}"[:300]), self.metrics,
                          scope["path"])

    def _gone(self, scope: Scope, t0: float) -> None:
        self.metrics.abandoned.labels(endpoint_label(scope["path"])).inc()
        self.metrics.answered(scope["path"], scope["method"], CLIENT_CLOSED, time.perf_counter() - t0)

    def _failed(self, scope: Scope, exc: Exception) -> None:
        print(f"[serve] unexpected {type(exc).__name__} on {scope['method']} {scope['path']}: {exc}", flush=True)
        traceback.print_exception(exc)

    def _limited(self, receive: Receive) -> Receive:
        seen = [0]
        limit = self.settings.max_body_bytes

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise BodyTooLarge(limit)
            return message

        return counted


async def respond(send: Send, err: LaneError, metrics: Metrics, path: str = "") -> None:
    """Answer with the JSON error body for `err` (counted by its code)."""
    body = error_body(err, path)
    metrics.errors.labels(err.code).inc()
    await send({"type": "http.response.start", "status": http_status(err.code),
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *error_headers(err)]})
    await send({"type": "http.response.body", "body": body})


def require_token(settings: ServeSettings, authorization: str | None) -> None:
    """The training endpoints' check: a configured token, presented as `Bearer <token>`."""
    if not settings.token:
        raise LaneError("forbidden", "training endpoints are disabled: no token is configured "
                        "(set LANE_SERVE_TOKEN or serve.token_file for the server)")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise LaneError("unauthorized", "missing bearer token (Authorization: Bearer <token>)")
    if not hmac.compare_digest(given.strip().encode("utf-8"), settings.token.encode("utf-8")):
        raise LaneError("unauthorized", "wrong bearer token")
