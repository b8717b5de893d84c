"""Backends: where the runner executes once the orchestrator has decided a run may start.

- `local` (default): the runner in this Python environment (CI, Jupyter, Colab).
- `local_docker`: the runner inside the GPU container built from docker/.
- `managed_job`: a job on a cluster scheduler. Without `managed_job.engine` in the config it is the
  seed's stub (`managed_job_not_implemented`, exit 2); with `engine: slurm` the run is a Slurm batch
  job (slurm.py: the rules and the client; slurm_job.py: submit, follow, settle, cancel).

Each backend is a function `run(ctx: RunContext) -> int` returning the process exit code; it prints
the final `[tts-prod]` line itself (or lets the runner print it).
"""

from __future__ import annotations

from ..core.config import BACKENDS as BACKEND_NAMES
from .base import Backend, RunContext

__all__ = ["BACKEND_NAMES", "Backend", "RunContext", "get_backend"]


def get_backend(name: str) -> Backend:
    """The backend function for `name`; LaneError(unknown_backend) for anything else."""
    from ..core.reasons import LaneError

    if name == "local":
        from .local import run as local_run

        return local_run
    if name == "local_docker":
        from .docker import run as docker_run

        return docker_run
    if name == "managed_job":
        from .managed import run as managed_run

        return managed_run
    raise LaneError("unknown_backend", f"{name!r} is not a backend; use one of {', '.join(BACKEND_NAMES)}")
