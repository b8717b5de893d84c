"""The four stages, one module each, each with the entry point its notebook calls:

    verify.run(st, p)                 preflight checks (registry in `checks`, shared with the orchestrator)
    train.prepare(st, p) / fit(...)   dataset, then FastPitch (+ HiFi-GAN)
    export.run(st, p)                 the voice bundle
    validate.run(st, p)               the bundle measured against the speaker's held-out recordings

`StageParams` is what a notebook receives (`StageParams.from_namespace(globals())`), and `display`
shows a stage's checks and report media in the notebook. Nothing heavy is imported here.
"""

from __future__ import annotations

from .params import StageParams

__all__ = ["StageParams"]
