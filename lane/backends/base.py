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
    """`lane run ...` arguments for a runner started elsewhere: every resolved setting as a flag (so
    the precedence decided outside holds inside), backend forced to local."""
    args = ["run", "--backend", "local", "--root", str(root), "--lane", settings.lane,
            "--profile", settings.profile, "--input-format", settings.input_format,
            "--voice-profile-id", settings.voice_profile_id, "--weights-manifest", settings.weights_manifest,
            "--stages", ",".join(settings.stages), "--cell-timeout-s", str(settings.cell_timeout_s)]
    if settings.audio:
        args += ["--audio", settings.audio]
    if settings.transcript:
        args += ["--transcript", settings.transcript]
    if settings.expected_head:
        args += ["--expected-head", settings.expected_head]
    if settings.consent:
        args += ["--consent", settings.consent]
    if settings.allow_from_scratch:
        args.append("--allow-from-scratch")
    if resume:
        args += ["--resume", run_id]
    return args
