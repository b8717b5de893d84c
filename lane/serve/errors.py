"""Every error `lane serve` answers is {"error": <reason code>, "detail": ...} (codes from lane.core.reasons);
this module maps a code to its HTTP status and builds the body."""

from __future__ import annotations

import json

from ..core.reasons import REASONS, LaneError

STATUS = {
    "request_invalid": 400, "empty_text": 400, "text_out_of_vocabulary": 400, "config_invalid": 400,
    "unknown_lane": 400, "missing_audio_path": 400,
    "unauthorized": 401,
    "forbidden": 403, "bundle_not_promoted": 403,
    "not_found": 404, "run_not_found": 404,
    "request_too_large": 413,
    "overloaded": 503, "bundle_invalid": 503, "scheduler_unavailable": 503,
    "request_timeout": 504,
}
BY_EXIT = {2: 409, 3: 400, 4: 500, 5: 409}


def http_status(code: str) -> int:
    if code in STATUS:
        return STATUS[code]
    return BY_EXIT.get(REASONS[code].exit_code, 500) if code in REASONS else 500


def error_body(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode("utf-8")


def invalid(detail: str) -> LaneError:
    return LaneError("request_invalid", detail)
