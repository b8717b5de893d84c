"""What every backend receives: the resolved settings and where the run lives; and the `lane run`
arguments a backend that runs the runner elsewhere (a container, a Slurm job) hands to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.config import Settings
    from ..core.lanes import LaneSpec
    from ..core.status import OrchestratorLog


@dataclass
class RunContext:
    settings: Settings
    root: Path
    run_id: str
    resume: bool
    lane: LaneSpec
    log: OrchestratorLog
    config_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    detach: bool = False  # managed_job: return once the job is submitted


Backend = Callable[[RunContext], int]


def inner_args(settings: Settings, root: Path, resume: bool, run_id: str) -> list[str]:
    """`lane run ...` arguments for a runner started elsewhere: every resolved setting that has a flag
    (lane.core.config.settings_flags, so the precedence decided outside holds inside), backend forced
    to local. Settings without a flag (require_clean_tree, kernel_name) travel in the environment."""
    from ..core.config import settings_flags

    args = ["run", "--backend", "local", "--root", str(root), *settings_flags(settings, skip=("backend",))]
    return args + (["--resume", run_id] if resume else [])
