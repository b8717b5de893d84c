"""The `managed_job` backend: the run as a job on a cluster scheduler.

Without `managed_job.engine` in the config file it stays exactly the seed's stub: it prints
`[tts-prod] status=blocked reason=managed_job_not_implemented`, writes train_status with status
blocked, and exits 2. With `engine: slurm` the run is submitted to Slurm (lane/backends/slurm_job.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.reasons import LaneError
from .base import RunContext

ENGINES = ("slurm",)
STUB_DETAIL = "managed_job has no engine configured (managed_job.engine: slurm in configs/lane.yaml); " \
              "use --backend local or local_docker"


def managed_config(root: str | os.PathLike[str], config_path: str | os.PathLike[str] | None = None,
                   env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `managed_job` section of the lane config file ({} when absent)."""
    from ..core.config import lane_section

    return lane_section(root, "managed_job", config_path, env)


def engine_of(cfg: Mapping[str, Any]) -> str | None:
    """The configured engine, None for the stub; config_invalid for an engine that does not exist."""
    engine = cfg.get("engine")
    if engine is None:
        return None
    if engine not in ENGINES:
        raise LaneError("config_invalid", f"managed_job.engine: {engine!r} is not one of {', '.join(ENGINES)}")
    return str(engine)


def require_engine(cfg: Mapping[str, Any]) -> str:
    """The engine, or the seed's stub error when none is configured."""
    engine = engine_of(cfg)
    if engine is None:
        raise LaneError("managed_job_not_implemented", STUB_DETAIL)
    return engine


def check_engine(root: Path, config_path: Path | None, env: Mapping[str, str] | None = None) -> str:
    return require_engine(managed_config(root, config_path, env))


def run(ctx: RunContext) -> int:
    cfg = managed_config(ctx.root, ctx.config_path, ctx.env or None)
    require_engine(cfg)
    from .slurm_job import run as slurm_run

    return slurm_run(ctx, cfg)
