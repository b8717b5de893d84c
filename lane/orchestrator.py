"""One command, one deterministic answer: `lane run` (and scripts/voice/train_production_voice.sh).

Before any stage starts, in this order (each failure ends the run with its reason code, a non-zero
exit, `artifacts/train_status.<lane>.json` and the final `[tts-prod]` line):

1. settings: flags > environment (TRAIN_BACKEND, TRAIN_LANE, AUDIO_PATH, ...) > config file > defaults,
   the config file checked against configs/schemas/lane_config.schema.json, the lane in
   configs/lanes/ (aliases resolved), the profile loads and every setting a
   stage reads later is valid (training choices, NeMo knobs, eval settings) -> config_invalid, unknown_lane
2. backend is local | local_docker | managed_job                             -> unknown_backend
3. managed_job without `managed_job.engine` is the seed's stub            -> managed_job_not_implemented
   (with `engine: slurm` the run becomes a Slurm job: lane/backends/slurm_job.py); --detach
   needs managed_job                                                       -> config_invalid
4. (the lane's stages include at least one asked for)                        -> config_invalid
5. the ESPnet fallback is declared but not built                             -> espnet_runtime_unavailable
6. head: --expected-head vs `git rev-parse HEAD`, clean tree when required  -> deterministic_head_mismatch
7. audio: present, readable, non-empty, decodable (header + a short decode) -> missing_audio_path

Steps 1, 6 and 7 are the verify stage's own checks (lane.stages.checks), run early here.
Then the backend runs the runner (lane.runner.execute_run), which prints its own final line. Every
line goes to stdout and to artifacts/voice_train_prod.orchestrator.log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .core import protocol
from .core.ids import PATTERN, check_id
from .core.lanes import LaneSpec
from .core.reasons import LaneError

# stages that read the audio input: only they need it checked up front
_AUDIO_STAGES = ("verify", "train")


def status_lane_name(name: str | None) -> str:
    """The lane name used for status files: the operator's, when it is safe as a file name."""
    if name and PATTERN.fullmatch(name) and ".." not in name:
        return name
    return "unknown"


def _given(name: str, flags: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """A setting as the flags or the environment give it, before the settings are resolved (for the
    status of a run whose settings do not resolve); None when neither does."""
    from .core.config import SPEC

    spec = SPEC[name]
    return flags.get(name) or (env.get(spec.env) if spec.env else None) or None


def preflight(settings: Any, root: Path, config_path: Path | None, log: Any, *, detach: bool = False,
              env: Mapping[str, str] | None = None) -> LaneSpec:
    """Steps 2-7 above for resolved settings; returns the LaneSpec. Raises LaneError."""
    from .backends import BACKEND_NAMES
    from .backends.managed import check_engine
    from .stages.checks import CheckContext, raise_first_finding, run_checks

    ctx = CheckContext(root=root, lane=settings.lane, profile=settings.profile, audio=settings.audio,
                       transcript=None, expected_head=settings.expected_head,
                       require_clean_tree=settings.require_clean_tree, config_path=config_path, max_audio_files=64,
                       consent=settings.consent, allow_from_scratch=settings.allow_from_scratch,
                       voice_profile_id=settings.voice_profile_id)
    raise_first_finding(run_checks(ctx, ["config"]))
    spec = ctx.spec
    assert spec is not None
    if settings.backend not in BACKEND_NAMES:
        raise LaneError("unknown_backend",
                        f"{settings.backend!r} is not a backend; use one of {', '.join(BACKEND_NAMES)}")
    if settings.backend == "managed_job":
        log.say(f"managed_job: engine {check_engine(root, config_path, env)}")
    elif detach:
        raise LaneError("config_invalid", f"--detach submits the run to a scheduler: it needs --backend managed_job, "
                        f"not {settings.backend}")
    if spec.runtime == "espnet":
        raise LaneError("espnet_runtime_unavailable", f"lane {settings.lane} needs the ESPnet runtime, which is not built yet")
    stages = [s for s in settings.stages if s in spec.stages]
    if not stages:
        raise LaneError("config_invalid", f"none of the stages {settings.stages} belongs to lane {spec.id} {list(spec.stages)}")
    settings.stages = stages
    _anchor_paths(settings, root)
    ctx.audio = settings.audio
    head = run_checks(ctx, ["head"])
    raise_first_finding(head)
    log.say(f"head: {head[0].detail}")
    if any(s in settings.stages for s in _AUDIO_STAGES):
        raise_first_finding(run_checks(ctx, ["audio"]))
        inv = ctx.audio_inventory
        assert inv is not None
        s = inv.summary()
        log.say(f"audio: {inv.kind} {inv.source}: {s['audio_files']} file(s), {s['audio_total_s']} s, "
                f"{s['audio_sample_rates']} Hz, {s['audio_channels']} ch")
        consent = run_checks(ctx, ["consent"])
        raise_first_finding(consent)
        log.say(f"consent: {consent[0].detail}")
    return spec


def _anchor_paths(settings: Any, root: Path) -> None:
    """Input paths are relative to the workspace root. One that exists only relative to the current
    directory is made absolute here, so the stage kernels (whose cwd differs) find the same file."""
    from .core.config import SETTINGS

    for name in (spec.name for spec in SETTINGS if spec.meta.path):
        value = getattr(settings, name)
        if value and not Path(value).is_absolute() and not (root / value).exists() and Path(value).exists():
            setattr(settings, name, str(Path(value).resolve()))


def fail_early(root: Path, lane: str, err: LaneError, *, run_id: str, backend: str | None,
               profile: str | None, log: Any) -> int:
    """End a run that never started: train_status, orchestrator log, the final line, the exit code."""
    from .core import status as run_status

    status = err.status
    name = status_lane_name(lane)
    log.say(f"error: {err.code}: {err.detail}")
    run_status.update(root, name, run_id, status=status, reason=err.code, detail=err.detail,
                      exit_code=err.exit_code, backend=backend, profile=profile)
    if err.code == "managed_job_not_implemented":
        protocol.status(status, err.code)  # the seed fixes this line exactly
    else:
        protocol.status(status, err.code, lane=name)
    return err.exit_code


def run_from_cli(flags: Mapping[str, Any], config_path: str | os.PathLike[str] | None = None,
                 root: str | os.PathLike[str] = ".", resume: str | None = None,
                 env: Mapping[str, str] | None = None, detach: bool = False) -> int:
    """`lane run`: resolve settings, check everything cheap, hand over to the backend (`detach`: return
    once a managed job is submitted). Returns the exit code."""
    from .backends import RunContext, get_backend
    from .core.config import SPEC, resolve_settings
    from .core.stage import new_run_id
    from .core.status import OrchestratorLog

    env = os.environ if env is None else env
    rootp = Path(root).resolve()
    cfg = Path(config_path) if config_path else None
    run_id = resume or env.get("LANE_RUN_ID") or new_run_id()
    with OrchestratorLog(rootp) as log:
        log.say(f"voice-lane run {run_id}: root={rootp}" + (f" (resume {resume})" if resume else ""))
        lane_name = str(_given("lane", flags, env) or SPEC["lane"].default)
        backend: str | None = _given("backend", flags, env)
        profile: str | None = None
        try:
            check_id("run id", run_id)  # before any run directory exists: a run id names runs/<run_id>/
            settings = resolve_settings(flags, env, cfg, rootp)
            lane_name, backend, profile = settings.lane, settings.backend, settings.profile
            log.say("settings: " + " ".join(f"{k}={v}({settings.sources.get(k, '?')})"
                                            for k, v in settings.as_dict().items()))
            spec = preflight(settings, rootp, cfg, log, detach=detach, env=env)
            runner = get_backend(settings.backend)
            ctx = RunContext(settings=settings, root=rootp, run_id=run_id, resume=resume is not None,
                             lane=spec, log=log, config_path=cfg, env=dict(env), detach=detach)
            log.say(f"lane {settings.lane} -> {spec.id} ({spec.status}, runtime {spec.runtime}); "
                    f"backend {settings.backend}; stages {','.join(settings.stages)}")
            return runner(ctx)
        except LaneError as err:
            return fail_early(rootp, lane_name, err, run_id=run_id, backend=backend, profile=profile, log=log)
        except KeyboardInterrupt:
            return fail_early(rootp, lane_name, LaneError("interrupted", "interrupted before the run started"),
                              run_id=run_id, backend=backend, profile=profile, log=log)
