"""The job queue's records: one JSON file per run under artifacts/jobs/, changed under one file lock.

A record says what was asked (job type, audio, options, the `lane run` flags they became), where it
went (backend, engine, Slurm job id) and where it is (state, pid, reason, times). States:

    queued -> running -> completed | failed | blocked | cancelled      (persisted)
    lost: running, but its process is gone without a final status     (reported, never persisted)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ..core.fsutil import atomic_write_json, read_json
from ..core.ids import check_id, within
from ..core.stage import now_iso
from ..core.status import TERMINAL, RunStatus

if TYPE_CHECKING:
    from ..backends.slurm_job import SlurmJob

JOBS_DIR = "artifacts/jobs"
JobState = Literal["queued", "running", "lost", "completed", "failed", "blocked", "cancelled"]
FINAL: frozenset[str] = TERMINAL | {"cancelled"}


class JobSummary(TypedDict, total=False):
    """What the job API (lane.jobs.Jobs, the /api/train endpoints) shows of a run: the record's
    public fields, the queue position of a queued run, and for `status` its train_status and the
    scheduler's view of its job."""

    run_id: str
    job_type: str | None
    lane: str | None
    state: str | None
    engine: str | None
    job_id: str | None
    reason: str | None
    exit_code: int | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    pid: int | None
    log: str | None
    queue_position: int | None
    train_status: RunStatus | None
    job: SlurmJob | None
    job_state: str | None


@dataclass
class JobRecord:
    run_id: str
    job_type: str
    lane: str
    audio_path: str
    backend: str  # local | managed_job
    engine: str  # local | slurm
    options: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    seq: int = 0  # submission order (ns)
    created_at: str | None = None
    state: JobState = "queued"
    job_id: str | None = None
    resume: bool = False  # the next start resumes the run (its process vanished once)
    resumes: int = 0
    pid: int | None = None
    reason: str | None = None
    detail: str | None = None
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    cancel_requested: bool = False
    log: str | None = None
    submit_log: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> JobRecord | None:
        """The record a file holds; None when it is not one (unknown keys are ignored)."""
        if not isinstance(data, dict) or not data.get("run_id"):
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError:  # a required field is missing
            return None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class JobStore:
    """The records of one workspace (artifacts/jobs/<run_id>.json)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / JOBS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from filelock import FileLock

        with FileLock(str(self.dir / ".lock"), timeout=60):
            yield

    def path(self, run_id: str) -> Path:
        return within(self.dir, f"{check_id('run id', run_id)}.json")

    def get(self, run_id: str) -> JobRecord | None:
        with contextlib.suppress(OSError, ValueError):
            return JobRecord.from_json(read_json(self.path(run_id)))
        return None

    def save(self, rec: JobRecord, **changes: Any) -> JobRecord:
        """Apply `changes` to the record (field names only) and write it atomically."""
        for key, value in changes.items():
            if not hasattr(rec, key):
                raise AttributeError(f"JobRecord has no field {key!r}")
            setattr(rec, key, value)
        rec.updated_at = now_iso()
        atomic_write_json(self.path(rec.run_id), rec.as_json())
        return rec

    def all(self) -> list[JobRecord]:
        """Every record, in submission order."""
        out = []
        for p in self.dir.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                rec = JobRecord.from_json(read_json(p))
                if rec is not None:
                    out.append(rec)
        return sorted(out, key=lambda r: (r.seq, r.run_id))

    def queue_position(self, run_id: str) -> int | None:
        queued = [r.run_id for r in self.all() if r.state == "queued" and r.backend == "local"]
        return queued.index(run_id) + 1 if run_id in queued else None
