"""The `local` backend: the runner in this Python environment (CI, Jupyter, Colab)."""

from __future__ import annotations

from . import RunContext


def run(ctx: RunContext) -> int:
    from ..runner import execute_run

    ctx.log.say(f"backend local: running {','.join(ctx.settings.stages)} in this Python")
    outcome = execute_run(ctx.settings, ctx.root, run_id=ctx.run_id, resume=ctx.resume, log=ctx.log)
    return int(outcome.exit_code)
