"""The error answers of `lane serve`, in two shapes:

- the seed's routes (/api/..., /healthz, ...): {"error": <reason code>, "detail": ...}
- OpenAI's routes (/v1/...): OpenAI's own shape, so its clients show the message:
  {"error": {"message": ..., "type": ..., "param": <field or null>, "code": <reason code>}}

Codes come from lane.core.reasons; this module maps a code to its HTTP status and builds the body and
the headers (Retry-After on `overloaded`: whole seconds, plus `retry-after-ms`, which OpenAI's clients
read first, and `x-should-retry`, which they obey).
"""

from __future__ import annotations

import json
import math

from ..core.reasons import REASONS, LaneError

STATUS = {
    "request_invalid": 400, "empty_text": 400, "text_out_of_vocabulary": 400, "config_invalid": 400,
    "unknown_lane": 400, "missing_audio_path": 400,
    "unauthorized": 401,
    "forbidden": 403, "bundle_not_promoted": 403,
    "not_found": 404, "run_not_found": 404,
    "request_too_large": 413,
    "internal_error": 500,
    "overloaded": 503, "bundle_invalid": 503, "scheduler_unavailable": 503,
    "request_timeout": 504,
}
BY_EXIT = {2: 409, 3: 400, 4: 500, 5: 409}
OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
                409: "conflict_error"}
RETRYABLE = ("overloaded",)


class Overloaded(LaneError):
    """`overloaded`, with the time after which a retry is expected to find room."""

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__("overloaded", detail)
        self.retry_after_s = retry_after_s


class Invalid(LaneError):
    """`request_invalid` naming the field at fault (OpenAI's `param`)."""

    def __init__(self, detail: str, param: str | None = None) -> None:
        super().__init__("request_invalid", detail)
        self.param = param


def http_status(code: str) -> int:
    if code in STATUS:
        return STATUS[code]
    return BY_EXIT.get(REASONS[code].exit_code, 500) if code in REASONS else 500


def is_openai(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def openai_type(status: int) -> str:
    return OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(err: LaneError, path: str = "") -> bytes:
    """The JSON body answering `err` on `path` (OpenAI's shape under /v1)."""
    if is_openai(path):
        param = getattr(err, "param", None)
        inner = {"message": err.detail, "type": openai_type(http_status(err.code)), "param": param, "code": err.code}
        return json.dumps({"error": inner}).encode("utf-8")
    return json.dumps({"error": err.code, "detail": err.detail}).encode("utf-8")


def error_headers(err: LaneError) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    if isinstance(err, Overloaded):
        headers += [(b"retry-after", str(max(1, math.ceil(err.retry_after_s))).encode()),
                    (b"retry-after-ms", str(round(err.retry_after_s * 1000)).encode())]
    if err.code == "unauthorized":
        headers.append((b"www-authenticate", b'Bearer realm="voice-lane training"'))
    if http_status(err.code) >= 500 or http_status(err.code) in (408, 409):
        headers.append((b"x-should-retry", b"true" if err.code in RETRYABLE else b"false"))
    return headers


def invalid(detail: str, param: str | None = None) -> LaneError:
    return Invalid(detail, param)
