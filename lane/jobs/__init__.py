"""Training jobs through the configured backend: what POST /api/train/start, GET /api/train/status?run_id=
and POST /api/train/cancel call, and what `lane cancel` uses.

    jobs = Jobs(root)                        # reads `jobs:` and `managed_job:` from configs/lane.yaml (or config_path)
    job = jobs.submit("tts_prod_train", "data/jane/session1.flac", profile="production")
    jobs.status(job["run_id"])               # train_status plus the queue or scheduler state
    jobs.cancel(job["run_id"]); jobs.list(); jobs.close()

The parts: `requests` checks a request (job types, options and paths, from their declarations) and
turns it into `lane run` flags; `store` keeps one typed record per run under artifacts/jobs/ (a
file lock around every change); two dispatchers run them:

- `jobs.backend: local` (default, `local.LocalDispatcher`): a persistent queue; a worker thread
  started by `Jobs` starts queued runs in order, at most `jobs.concurrency` (default 1) at a time;
- `jobs.backend: managed_job` (with `managed_job.engine: slurm`, `slurm.SlurmDispatcher`): each
  request is a detached Slurm job; the scheduler is the queue.

States: queued, running, completed, failed, blocked, cancelled; a running run whose process is gone
without a final status is reported `lost` (reason lost) until a worker resumes it. Errors are
LaneError with a reason code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import status as run_status
from ..core.ids import check_id
from ..core.reasons import LaneError
from ..core.stage import new_run_id, now_iso
from .local import LocalDispatcher, pid_runs
from .requests import request_flags
from .slurm import SlurmDispatcher, job_state
from .store import FINAL, JobRecord, JobState, JobStore, JobSummary

__all__ = ["FINAL", "JobRecord", "JobState", "JobSummary", "Jobs", "pid_runs"]

class Jobs:
    """The job API over one workspace (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str] = ".", config_path: str | os.PathLike[str] | None = None, *,
                 env: Mapping[str, str] | None = None, start: bool = True, poll_s: float = 0.5) -> None:
        from ..core.config import lane_config_file, lane_section

        self.root = Path(root).resolve()
        self.env = dict(os.environ if env is None else env)
        cfg = lane_config_file(self.root, config_path, self.env)
        self.config_path = cfg.resolve() if cfg is not None else None
        section = lane_section(self.root, "jobs", config_path, self.env)
        self.backend = str(section.get("backend") or "local")
        if self.backend not in ("local", "managed_job"):
            raise LaneError("config_invalid", f"jobs.backend: {self.backend!r} is not local or managed_job")
        concurrency = int(section.get("concurrency") or 1)
        if concurrency < 1:
            raise LaneError("config_invalid", "jobs.concurrency must be at least 1")
        self.data_root = (self.root / str(section.get("data_root") or "data")).resolve()
        self.store = JobStore(self.root)
        self.local = LocalDispatcher(self.root, self.store, self.env, self.lane_cmd, concurrency, poll_s)
        self.slurm = SlurmDispatcher(self.root, self.store, self.env, self.lane_cmd)
        if start and self.backend == "local":
            self.local.start()

    def lane_cmd(self) -> list[str]:
        cmd = [sys.executable, "-m", "lane", "run", "--root", str(self.root)]
        return cmd + (["--config", str(self.config_path)] if self.config_path else [])

    def submit(self, job_type: str, audio_path: str, **options: Any) -> JobSummary:
        """Queue a run (local backend) or submit it to the scheduler (managed_job); its summary:
        run_id, state, engine, job_id, queue_position ... LaneError when the request is refused."""
        flags = request_flags(self.root, self.data_root, job_type, audio_path, options)
        rec = JobRecord(run_id=new_run_id(), job_type=job_type, lane=job_type, audio_path=audio_path,
                        backend=self.backend, engine="local" if self.backend == "local" else "slurm",
                        options=dict(options), flags=flags, seq=time.time_ns(), created_at=now_iso())
        if self.backend == "managed_job":
            self.slurm.submit(rec)
            return self.status(rec.run_id)
        self.local.queue(rec)
        return self.summary(rec)

    def status(self, run_id: str) -> JobSummary:
        """The run's summary (state, queue position or scheduler job) with its train_status."""
        check_id("run id", run_id)
        rec = self.store.get(run_id)
        job = self.slurm.refresh(run_id) if rec is None or rec.engine == "slurm" else None
        if job is not None and rec is not None and rec.state not in FINAL:
            with self.store.locked():
                rec = self.store.save(self.store.get(run_id) or rec, state=job_state(job), job_id=job.get("job_id"),
                                      reason=(job.get("outcome") or {}).get("reason"))
        lane = (rec.lane if rec else None) or str((job or {}).get("lane") or "") or None
        raw = run_status.read(self.root, run_id, lane)
        if rec is None and raw is None and job is None:
            raise LaneError("run_not_found", f"no job or run {run_id!r} in {self.root}")
        st = run_status.observed(raw) if raw is not None else None
        seen = st or {}
        out = self.summary(rec, st) if rec else JobSummary(
            run_id=run_id, lane=lane or seen.get("lane"), state=job_state(job) if job else seen.get("status"),
            engine="slurm" if job else seen.get("engine") or "local")
        out["train_status"], out["job"], out["job_state"] = st, job, (job or {}).get("state")
        if job:
            out["job_id"] = job.get("job_id")
        return out

    def summary(self, rec: JobRecord, st: run_status.RunStatus | None = None) -> JobSummary:
        """What the API shows of a record: its fields, the queue position of a queued run, and `lost`
        for a running one whose process is gone without a final status."""
        out = JobSummary(run_id=rec.run_id, job_type=rec.job_type, lane=rec.lane, state=rec.state, engine=rec.engine,
                         job_id=rec.job_id, reason=rec.reason, exit_code=rec.exit_code, created_at=rec.created_at,
                         started_at=rec.started_at, finished_at=rec.finished_at, pid=rec.pid, log=rec.log)
        if rec.state == "queued":
            out["queue_position"] = self.store.queue_position(rec.run_id)
        if rec.state == "running" and st is not None and st.get("lost"):
            out["state"], out["reason"] = "lost", "lost"
        return out

    def list(self) -> list[JobSummary]:
        """Every job this workspace queued, oldest first (scheduler jobs refreshed)."""
        return [self.status(rec.run_id) if rec.engine == "slurm" and rec.state not in FINAL else self.summary(rec)
                for rec in self.store.all()]

    def cancel(self, run_id: str, wait_s: float = 30.0) -> JobSummary:
        """Cancel a queued or running run (scancel for a scheduler job); its status afterwards. A run
        that already ended is left as it is."""
        check_id("run id", run_id)
        rec = self.store.get(run_id)
        if (rec is None or rec.engine == "slurm") and self.slurm.has_job(run_id):
            self.slurm.cancel(run_id, wait_s)
            return self.status(run_id)
        if rec is None:
            raise LaneError("run_not_found", f"no job {run_id!r} in {self.store.dir}")
        self.local.cancel(rec, wait_s)
        return self.status(run_id)

    def wait(self, run_id: str, timeout_s: float = 600.0) -> JobSummary:
        """Poll `status` until the run has ended (or `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            out = self.status(run_id)
            if out.get("state") in FINAL or time.monotonic() > deadline:
                return out
            time.sleep(0.2)

    def close(self) -> None:
        """Stop the worker. Runs it started keep going; the next Jobs on this workspace adopts them."""
        self.local.close()

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
