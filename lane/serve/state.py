"""What the endpoints share: the server's state, the JSON error answer, and the try-a-voice page."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi.responses import Response

from ..core.reasons import LaneError
from .errors import error_body, error_headers, http_status
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


def error_response(state: ServerState, err: LaneError, path: str) -> Response:
    """The error answer for `err` on `path` (OpenAI's shape under /v1), counted: `overloaded` as the
    admission's refusal, anything else as the application's."""
    state.metrics.refused("admission" if err.code == "overloaded" else "app", err.code)
    headers = {k.decode(): v.decode() for k, v in error_headers(err)}
    return Response(error_body(err, path), status_code=http_status(err.code), media_type="application/json",
                     headers=headers)


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
