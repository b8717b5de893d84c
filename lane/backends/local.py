"""The `local` backend: the runner in this Python environment (CI, Jupyter, Colab)."""

from __future__ import annotations

import os

from .base import RunContext


def run(ctx: RunContext) -> int:
    from ..runner import execute_run

    if ctx.config_path is not None:  # the verify kernel validates the same config file (lane.core.config.lane_config_file)
        path = ctx.config_path  # resolved as lane.core.config.resolve_settings does: as given, else under the root
        path = path.resolve() if path.exists() else ctx.root / path
        os.environ["LANE_CONFIG"] = str(path)
    ctx.log.say(f"backend local: running {','.join(ctx.settings.stages)} in this Python")
    outcome = execute_run(ctx.settings, ctx.root, run_id=ctx.run_id, resume=ctx.resume, log=ctx.log)
    return int(outcome.exit_code)
