"""What the endpoints share: the server's state, the JSON error answer, and the try-a-voice page."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi.responses import JSONResponse

from ..core.reasons import LaneError
from .errors import http_status
from .metrics import Metrics
from .settings import ServeSettings
from .synth import Synthesizer
from .training import JobQueue, open_jobs
from .voices import Registry


@dataclass
class ServerState:
    settings: ServeSettings
    registry: Registry
    synth: Synthesizer
    metrics: Metrics
    jobs: JobQueue | None = None
    own_jobs: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def job_queue(self) -> JobQueue:
        if self.jobs is None:
            self.jobs, self.own_jobs = open_jobs(self.settings.root), True
        return self.jobs


def error_response(state: ServerState, err: LaneError) -> JSONResponse:
    state.metrics.errors.labels(err.code).inc()
    headers = {}
    if err.code == "overloaded":
        headers["Retry-After"] = str(state.settings.retry_after_s)
    if err.code == "unauthorized":
        headers["WWW-Authenticate"] = 'Bearer realm="voice-lane training"'
    return JSONResponse({"error": err.code, "detail": err.detail}, status_code=http_status(err.code), headers=headers)


PAGE_BLOCK = re.compile(r"<(script|style)>(.*?)</\1>", re.S)


def page() -> tuple[bytes, str]:
    """The try-a-voice page and its Content-Security-Policy: only its own inline script and style
    (by hash), same-origin fetches, blob: audio; no frames."""
    html = resources.files("lane.serve").joinpath("page.html").read_text(encoding="utf-8")
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in PAGE_BLOCK.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    csp = (f"default-src 'none'; script-src {' '.join(hashes['script'])}; style-src {' '.join(hashes['style'])}; "
           "connect-src 'self'; media-src 'self' blob:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
           "form-action 'none'")
    return html.encode("utf-8"), csp
