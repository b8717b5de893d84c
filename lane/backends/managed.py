"""The `managed_job` backend: intentionally a stub, exactly as the seed fixes it.

It prints `[tts-prod] status=blocked reason=managed_job_not_implemented`, writes train_status with
status blocked, and exits 2. Nothing runs."""

from __future__ import annotations

from ..core.reasons import LaneError
from .base import RunContext


def run(ctx: RunContext) -> int:
    raise LaneError("managed_job_not_implemented", "the managed backend is a stub; use --backend local or local_docker")
