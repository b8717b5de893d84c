"""The training endpoints (bearer token required, see security.require_token), over the job queue's
API (`lane.jobs.Jobs`): the server never starts a process itself.

    POST /api/train/start   {"job_type": "tts_prod_train", "audio_path": "data/x.flac", "profile": ..., ...}
                            -> 202 + the job (run_id, state, engine, job_id, queue_position)
    GET  /api/train/status  ?run_id=R (the job and its train_status) or ?lane=L (the seed's:
                            artifacts/train_status.<lane>.json)
    POST /api/train/cancel  {"run_id": R}
    GET  /api/train/jobs    every job of the workspace

`Jobs` checks the request before anything is written: the job type, every identifier (lane.core.ids),
and every path (audio, transcript, consent), which must resolve inside `jobs.data_root` (default
data/, symlinks followed). Its refusals come back as their reason codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.ids import check_id
from ..core.reasons import LaneError
from ..core.status import RunStatus
from .errors import invalid
from .settings import ServeSettings

if TYPE_CHECKING:
    from ..jobs.store import JobSummary


class JobQueue(Protocol):
    def submit(self, job_type: str, audio_path: str, **options: Any) -> JobSummary: ...
    def status(self, run_id: str) -> JobSummary: ...
    def cancel(self, run_id: str) -> JobSummary: ...
    def list(self) -> list[JobSummary]: ...
    def close(self) -> None: ...


def open_jobs(root: Path) -> JobQueue:
    from ..jobs import Jobs

    jobs: JobQueue = Jobs(root)
    return jobs


def submit_args(body: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(job_type, audio_path, options) of a start request; the values are checked by Jobs."""
    job_type = body.get("job_type") or "tts_prod_train"
    audio = body.get("audio_path")
    if not isinstance(job_type, str) or not isinstance(audio, str) or not audio:
        raise invalid("'job_type' must be a string and 'audio_path' a non-empty path")
    return job_type, audio, {k: v for k, v in body.items() if k not in ("job_type", "audio_path")}


def run_id_of(value: Any) -> str:
    try:
        return check_id("run id", value)
    except LaneError as err:
        raise invalid(err.detail) from None


def lane_status(settings: ServeSettings, lane: str) -> RunStatus:
    from ..core.status import observed, read_lane

    status = read_lane(settings.root, check_id("lane", lane))
    if status is None:
        raise LaneError("not_found", f"no train_status for lane {lane!r}")
    return observed(status)
