"""The Slurm dispatcher (`jobs.backend: managed_job` with `managed_job.engine: slurm`): a request is
`lane run --backend managed_job --detach`, which writes the job script and `sbatch`es it; the
scheduler is the queue, and a job's state is asked of it (a job that ended is settled, exactly as
`lane status RUN_ID` does: lane.backends.slurm_job.refresh)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import status as run_status
from ..core.reasons import LaneError, fail_status
from ..core.stage import now_iso
from .store import JobRecord, JobState, JobStore

if TYPE_CHECKING:
    from ..backends.slurm_job import SlurmJob


class SlurmDispatcher:
    def __init__(self, root: Path, store: JobStore, env: dict[str, str], lane_cmd: Callable[[], list[str]]) -> None:
        self.root, self.store, self.env, self.lane_cmd = root, store, env, lane_cmd

    def submit(self, rec: JobRecord) -> None:
        """Submit the run; LaneError (with the submission's own reason) when it was not submitted."""
        from ..backends.slurm_job import read_job

        cmd = [*self.lane_cmd(), "--backend", "managed_job", "--detach", *rec.flags]
        env = {**self.env, "LANE_RUN_ID": rec.run_id, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        job = read_job(self.root, rec.run_id) or {}
        with self.store.locked():
            self.store.save(rec, job_id=job.get("job_id"), pid=None, submit_log=proc.stdout[-4000:] + proc.stderr[-2000:])
        if proc.returncode != 0 or not job.get("job_id"):
            st = run_status.read(self.root, rec.run_id, rec.lane) or {}
            code = str(st.get("reason") or "scheduler_unavailable")
            with self.store.locked():
                self.store.save(rec, state=fail_status(code), reason=code, exit_code=proc.returncode,
                                finished_at=now_iso())
            raise LaneError(code, str(st.get("detail") or proc.stderr.strip()[-300:] or "submission failed"))

    def refresh(self, run_id: str) -> SlurmJob | None:
        """The run's job as the scheduler sees it now (None when the run is no Slurm job)."""
        from ..backends.slurm_job import refresh

        return refresh(self.root, run_id, self.env)

    def cancel(self, run_id: str, wait_s: float) -> None:
        from ..backends import slurm_job

        slurm_job.cancel(self.root, run_id, self.env, wait_s=wait_s)

    def has_job(self, run_id: str) -> bool:
        from ..backends.slurm_job import read_job

        return read_job(self.root, run_id) is not None


def job_state(job: Mapping[str, Any]) -> JobState:
    """A scheduler job's state in the queue's words."""
    out = job.get("outcome") or {}
    if job.get("settled") and out:
        return "cancelled" if out.get("reason") == "job_cancelled" else out["status"]
    return "queued" if job.get("state") in ("PENDING", "SUBMITTING", None) else "running"
