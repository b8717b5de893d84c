"""Preflight checks: one registry of small functions that both the orchestrator (before a run
starts) and the verify stage (as recorded stage checks) run.

=============  ====================================================  ==============================
registry name  check ids it records                                  failing reason
=============  ====================================================  ==============================
config         config_valid: config file schema, lane, profile       config_invalid, unknown_lane
head           head: git HEAD vs expected, clean tree if required    deterministic_head_mismatch
audio          audio_present (+ transcript_present)                  missing_audio_path
consent        consent: a spoken consent (lane.consent) covers the      consent_missing, consent_invalid
               recordings
consent_voice  consent_voice: the recordings are still the consent's    consent_speaker_mismatch
               voice (verify only, not EARLY)
weights        weights_manifest_ok, weights_license_commercial,      weights_*, *_license_blocked,
               base_weights                                          base_weights_missing
runtime        runtime_nemo, runtime_torch                           nemo_runtime_unavailable
resources      resources_disk, resources_mem                         insufficient_resources
=============  ====================================================  ==============================

Each check takes a `CheckContext` (the settings plus what earlier checks learned: lane spec,
profile, audio inventory ...) and returns `Finding`s. `run_checks` runs the named ones in order.
The orchestrator runs `EARLY` and raises the first failure; verify runs `ALL`, records every finding,
then raises the first failure, so the stage result carries a precise reason while the report still
shows every check.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..consent.gate import Found
from ..core.lanes import LaneSpec
from ..core.paths import git_head, resolve_input
from ..core.reasons import LaneError
from ..core.weights import EntryReport
from ..data.probe import AudioInventory


@dataclass
class Finding:
    """One recorded check: ok True/False, or None for not evaluated; `error` is what failing means."""

    id: str
    ok: bool | None
    detail: str
    error: LaneError | None = None
    optional: bool = False
    value: float | None = None
    threshold: float | None = None


@dataclass
class RuntimeInfo:
    nemo_version: str | None
    torch_version: str | None
    device: str  # "cuda:0 (<name>)" or "cpu"
    cuda: bool
    problem: str = ""


@dataclass
class CheckContext:
    """The settings the checks read, and what earlier checks found (later checks build on it)."""

    root: Path
    lane: str
    profile: str
    audio: str | None = None
    transcript: str | None = None
    expected_head: str | None = None
    require_clean_tree: bool = False
    weights_manifest: str | None = None
    allow_from_scratch: bool = False
    config_path: str | os.PathLike[str] | None = None
    consent: str | None = None
    voice_profile_id: str | None = None
    snapshot: str | None = None  # the run's frozen configuration (lane.core.snapshot): lane, profile, licences
    max_audio_files: int | None = None  # probe at most this many files of a large folder
    spec: LaneSpec | None = None
    prof: dict[str, Any] = field(default_factory=dict)
    audio_inventory: AudioInventory | None = None
    weights: list[EntryReport] = field(default_factory=list)
    runtime: RuntimeInfo | None = None
    consent_coverage: Found | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def promotable(self) -> bool:
        """Whether this run could be promoted (the profile and lane allow it, not from scratch)."""
        return bool(self.prof.get("promotable", False)) and self.spec is not None and self.spec.promotable \
            and not self.allow_from_scratch


CheckFn = Callable[[CheckContext], list[Finding]]


# ------------------------------------------------------------------------------------------ config
def _check_profile_settings(prof: dict[str, Any], root: Path) -> None:
    """Every profile setting a later stage reads, checked now: training choices and NeMo knobs, the
    evaluation thresholds (config_invalid). Hours of training must not end in a typo."""
    from ..metrics.thresholds import load_thresholds
    from ..nemo.fastpitch import settings_problems
    from .validate import DEFAULTS as EVAL_DEFAULTS

    problems = settings_problems(prof, root)
    evc = dict(prof.get("eval") or {})
    unknown = sorted(set(evc) - set(EVAL_DEFAULTS))
    if unknown:
        problems.append(f"unknown eval setting(s) {unknown} (known: {', '.join(sorted(EVAL_DEFAULTS))})")
    if "asr_mode" in unknown:
        problems.append("eval.asr_mode is gone: the gated CER always comes from free decoding (the grammar-"
                        "constrained score is an advisory row, eval.asr_grammar_advisory)")
    if not isinstance(evc.get("evaluators") or {}, dict):
        problems.append("eval.evaluators must map asr/speaker/mos to weights-manifest entry ids")
    else:
        from ..metrics.evaluators import PROFILE_KEYS

        bad = sorted(set(evc.get("evaluators") or {}) - set(PROFILE_KEYS))
        if bad:
            problems.append(f"eval.evaluators: unknown key(s) {bad} (use {', '.join(PROFILE_KEYS)})")
    sentences = Path(str(evc.get("sentences", EVAL_DEFAULTS["sentences"])))
    if not (sentences if sentences.is_absolute() else root / sentences).is_file():
        problems.append(f"eval.sentences {sentences} does not exist")
    if problems:
        raise LaneError("config_invalid", f"profile {prof.get('name')}: " + "; ".join(problems))
    load_thresholds(prof.get("eval") or {})


def check_config(ctx: CheckContext) -> list[Finding]:
    from ..core.anchors import workspace_problem
    from ..core.config import lane_config_file, validate_config_file
    from ..core.snapshot import frozen_lane, frozen_profile

    try:
        cfg = lane_config_file(ctx.root, ctx.config_path)
        anchors = workspace_problem(ctx.root, ctx.config_path)
        if anchors:
            raise LaneError("trust_anchor_in_workspace", anchors)
        if cfg is not None and cfg.exists():
            validate_config_file(cfg, ctx.root)
        ctx.spec = frozen_lane(ctx.snapshot, ctx.lane, ctx.root)
        ctx.prof = frozen_profile(ctx.snapshot, ctx.profile, ctx.root)
        _check_profile_settings(ctx.prof, Path(ctx.root))
    except LaneError as err:
        return [Finding("config_valid", False, f"{err.code}: {err.detail}", err)]
    return [Finding("config_valid", True, f"config {cfg.name if cfg else '(defaults)'} valid; lane {ctx.lane} -> "
                    f"{ctx.spec.id} ({ctx.spec.status}); profile {ctx.profile}")]


# ------------------------------------------------------------------------------------------ head
@dataclass
class HeadInfo:
    sha: str | None
    dirty: bool | None
    ok: bool
    detail: str


def check_head(root: str | os.PathLike[str], expected_head: str | None, require_clean_tree: bool) -> HeadInfo:
    """Compare HEAD with `expected_head` (a full sha or a prefix of at least 7 hex digits)."""
    head = git_head(root)
    if not expected_head and not require_clean_tree:
        return HeadInfo(head.sha, head.dirty, True, f"no expected head given; HEAD={head.sha or 'n/a'}")
    sha, dirty = head.sha, head.dirty
    if sha is None:
        return HeadInfo(None, None, False, f"cannot read HEAD: {head.problem}")
    if expected_head:
        exp = expected_head.strip().lower()
        if len(exp) < 7 or not sha.startswith(exp):
            return HeadInfo(sha, dirty, False, f"HEAD {sha} != expected {expected_head}")
    if require_clean_tree and dirty is not False:
        return HeadInfo(sha, dirty, False, f"tree at {sha[:12]} has uncommitted changes (require_clean_tree)")
    return HeadInfo(sha, dirty, True, f"HEAD {sha}" + (" (clean)" if dirty is False else " (dirty)" if dirty else ""))


def head_finding(ctx: CheckContext) -> list[Finding]:
    head = check_head(ctx.root, ctx.expected_head, ctx.require_clean_tree)
    ctx.stats.update(head=head.sha or "n/a", tree_dirty=bool(head.dirty))
    return [Finding("head", head.ok, head.detail,
                    None if head.ok else LaneError("deterministic_head_mismatch", head.detail))]


# ------------------------------------------------------------------------------------------ audio
def check_audio(ctx: CheckContext) -> list[Finding]:
    from ..data.probe import inspect_audio

    out: list[Finding] = []
    try:
        inv = inspect_audio(ctx.audio, ctx.root, max_files=ctx.max_audio_files)
        ctx.audio_inventory = inv
        s = inv.summary()
        skipped = f"; {len(inv.problems)} undecodable file(s) skipped" if inv.problems else ""
        out.append(Finding("audio_present", True, f"{inv.kind}: {s['audio_files']} file(s), {s['audio_total_s']} s, "
                           f"{s['audio_sample_rates']} Hz, {s['audio_channels']} ch{skipped}"))
        ctx.stats.update(s)
    except LaneError as err:
        out.append(Finding("audio_present", False, f"{err.code}: {err.detail}", err))
    if ctx.transcript:
        tpath = resolve_input(ctx.transcript, ctx.root)
        ok = tpath.is_file() and tpath.stat().st_size > 0
        out.append(Finding("transcript_present", ok, f"{ctx.transcript}" + ("" if ok else ": missing or empty"),
                           None if ok else LaneError("missing_audio_path", f"transcript {ctx.transcript}: missing or empty")))
    return out


# ------------------------------------------------------------------------------------------ consent
def _consent_failed(ctx: CheckContext, check_id: str, err: LaneError) -> list[Finding]:
    if ctx.promotable or err.code == "consent_invalid":
        return [Finding(check_id, False, f"{err.code}: {err.detail}", err)]
    return [Finding(check_id, True, f"not required: profile {ctx.profile} is not promotable ({err.code}: {err.detail})")]


def check_consent(ctx: CheckContext) -> list[Finding]:
    """A verified spoken consent for this voice covers every input recording (lane.consent.gate)."""
    from ..consent.gate import covering, how_to, locate, problem

    record = locate(ctx.root, ctx.audio, ctx.consent, ctx.voice_profile_id)
    if record is None:
        return _consent_failed(ctx, "consent", LaneError("consent_missing", f"no consent for these recordings: "
                                                          f"{how_to(ctx.voice_profile_id)}"))
    files = [Path(f.path) for f in ctx.audio_inventory.files] if ctx.audio_inventory else []
    try:
        found = covering(ctx.root, record, files, ctx.voice_profile_id)
    except LaneError as err:
        return _consent_failed(ctx, "consent", err)
    ctx.consent_coverage = found
    ctx.stats.update(consent_speaker=found.speaker, consent_use=found.permitted_use, consent_sha256=found.sha256,
                     consent_kind=found.kind)
    where = f"{record.name} ({found.kind}: {found.speaker}, {found.permitted_use} use, sha256 {found.sha256[:12]})"
    why = problem(found, ctx.voice_profile_id)
    if why:
        return _consent_failed(ctx, "consent", LaneError("consent_missing", f"{where}: {why}"))
    return [Finding("consent", True, f"{where} covers all {len(found.covered)} recording(s)")]


def check_consent_voice(ctx: CheckContext) -> list[Finding]:
    """The consent voice compared again with the recordings as they are now (run by verify only)."""
    from ..consent.gate import voice_again

    found = ctx.consent_coverage
    if found is None or found.kind != "spoken":
        return _consent_failed(ctx, "consent_voice", LaneError("consent_missing", "no spoken consent to compare with"))
    files = [Path(f.path) for f in ctx.audio_inventory.files] if ctx.audio_inventory else []
    try:
        scores = voice_again(ctx.root, found, files, ctx.weights_manifest)
    except LaneError as err:
        return _consent_failed(ctx, "consent_voice", err)
    ctx.stats.update(consent_similarity=scores["similarity"], consent_snorm=scores["snorm"])
    return [Finding("consent_voice", True, f"the recordings are the consent's voice: similarity {scores['similarity']:.3f}, "
                    f"S-norm {scores['snorm']:.2f} over {scores['cohort_size']} cohort voices",
                    value=scores["similarity"])]


# ------------------------------------------------------------------------------------------ weights
_LICENCE_CODES = ("weights_license_blocked", "code_license_blocked")


def check_weights(ctx: CheckContext) -> list[Finding]:
    """The manifest's files and hashes, its licences (separately), and base weights where required."""
    from ..core.snapshot import frozen_policy
    from ..core.weights import verify_manifest

    if not ctx.weights_manifest:
        no_manifest = LaneError("weights_manifest_invalid", "no weights manifest given (--weights-manifest)")
        return [Finding("weights_manifest_ok", False, no_manifest.detail, no_manifest),
                Finding("weights_license_commercial", False, "no manifest: licences unknown",
                        LaneError("weights_license_blocked", "no manifest: licences unknown"))]
    report = verify_manifest(resolve_input(ctx.weights_manifest, ctx.root), ctx.root,
                             policy=frozen_policy(ctx.snapshot, ctx.root))
    ctx.weights = [e.as_dict() for e in report.entries]
    files = [p for p in report.problems if p.code not in _LICENCE_CODES]
    licences = [p for p in report.problems if p.code in _LICENCE_CODES]
    n_ok = sum(1 for e in report.entries if e.state == "ok")
    n_abs = sum(1 for e in report.entries if e.state.startswith("absent"))
    out = [Finding("weights_manifest_ok", False, f"{files[0].code}: {files[0].detail}", LaneError(files[0].code, files[0].detail))
           if files else Finding("weights_manifest_ok", True, f"{n_ok} verified, {n_abs} optional absent ({ctx.weights_manifest})")]
    if licences:
        out.append(Finding("weights_license_commercial", False, f"{licences[0].code}: {licences[0].detail}",
                           LaneError(licences[0].code, licences[0].detail)))
    elif report.entries:
        out.append(Finding("weights_license_commercial", True, "code and weights licences allowed for all entries: "
                           + ", ".join(f"{e.id}={e.weights_license}" for e in report.entries)))
    else:
        out.append(Finding("weights_license_commercial", False, "manifest has no entries to check",
                           LaneError("weights_manifest_invalid", "manifest has no entries")))
    ctx.stats.update(weights_entries=len(report.entries), weights_verified=n_ok, weights_absent_optional=n_abs)
    out.append(_base_weights(ctx, list(report.entries)))
    return out


def wanted_bases(prof: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(role, entry id or None for "the first usable one") for each model the profile fine-tunes."""
    from ..nemo.fastpitch import train_settings

    t = train_settings(prof)
    out: list[tuple[str, str | None]] = []
    if t["fastpitch"].get("init") == "base":
        out.append(("base_spectrogram", t["fastpitch"].get("base")))
    hifi = t["vocoder"].get("hifigan") or {}
    if t["vocoder"].get("type") == "hifigan" and hifi.get("init", "base") == "base":
        out.append(("base_vocoder", hifi.get("base")))
    return out


def _base_weights(ctx: CheckContext, entries: list[Any]) -> Finding:
    """The base weights the profile fine-tunes from are listed and verified (base_weights_missing
    otherwise, unless --allow-from-scratch): the same choice the train stage makes, made up front."""
    wanted = wanted_bases(ctx.prof)
    if not wanted:
        return Finding("base_weights", True, f"not required: profile {ctx.profile} trains from scratch")
    found, missing = [], []
    for role, base_id in wanted:
        ok = [e for e in entries if e.role == role and e.state == "ok" and base_id in (None, e.id)]
        if ok:
            found.append(f"{role} {ok[0].id}")
        else:
            missing.append(f"{role} {base_id or '(any)'}")
    if not missing:
        return Finding("base_weights", True, "fine-tunes from " + ", ".join(found) + " (verified)")
    msg = f"profile {ctx.profile} fine-tunes from base weights; no usable entry for {', '.join(missing)}"
    if ctx.allow_from_scratch:
        return Finding("base_weights", True, f"{msg}: --allow-from-scratch trains those from scratch (not promotable)")
    return Finding("base_weights", False, msg, LaneError("base_weights_missing", msg))


# ------------------------------------------------------------------------------------------ runtime
def nemo_version() -> str:
    """The NeMo version; LaneError(nemo_runtime_unavailable) when `nemo` or its TTS collection
    cannot be imported in this Python."""
    import importlib.util

    try:
        import nemo

        spec = importlib.util.find_spec("nemo.collections.tts")
    except Exception as exc:  # ImportError, or anything a broken install raises at import
        raise LaneError("nemo_runtime_unavailable", f"import nemo failed: {type(exc).__name__}: {exc}") from None
    if spec is None:
        raise LaneError("nemo_runtime_unavailable", "nemo is installed without nemo.collections.tts (install nemo_toolkit[tts])")
    why = tar_filters_missing()
    if why:
        raise LaneError("nemo_runtime_unavailable", why)
    return str(getattr(nemo, "__version__", "unknown"))


def tar_filters_missing() -> str | None:
    """NeMo opens every .nemo archive with `TarFile.extract(..., filter="data")`, the extraction
    filters of PEP 706 (Python 3.12, backported to 3.11.4 and 3.10.12). On an older Python (Debian 12's
    python3.11 is 3.11.2) loading any base fails deep in training with a TypeError; say so up front."""
    import sys
    import tarfile

    if hasattr(tarfile, "data_filter"):
        return None
    return (f"Python {sys.version.split()[0]} has no tarfile extraction filters (PEP 706): NeMo cannot open .nemo "
            "files; use Python >= 3.11.4 (the CUDA PyTorch image has it; Debian 12's python3.11 does not)")


def torch_device() -> tuple[str, str, bool]:
    """(torch version, device description, CUDA available)."""
    try:
        import torch
    except Exception as exc:
        raise LaneError("nemo_runtime_unavailable", f"import torch failed: {type(exc).__name__}: {exc}") from None
    cuda = bool(torch.cuda.is_available())
    device = f"cuda:0 ({torch.cuda.get_device_name(0)})" if cuda else "cpu"
    return str(torch.__version__), device, cuda


def check_runtime(ctx: CheckContext) -> list[Finding]:
    out: list[Finding] = []
    kind = ctx.spec.runtime if ctx.spec else "nemo"
    version: str | None = None
    if kind == "nemo":
        try:
            version = nemo_version()
            out.append(Finding("runtime_nemo", True, f"nemo {version} importable (nemo.collections.tts present)"))
        except LaneError as err:
            out.append(Finding("runtime_nemo", False, f"{err.code}: {err.detail}", err))
    else:
        out.append(Finding("runtime_nemo", None, f"lane runtime is {kind}, not NeMo", optional=True))
    torch_version: str | None
    try:
        torch_version, device, cuda = torch_device()
        out.append(Finding("runtime_torch", True, f"torch {torch_version} on {device}"))
    except LaneError as err:
        torch_version, device, cuda = None, "none", False
        out.append(Finding("runtime_torch", False, f"{err.code}: {err.detail}", err))
    ctx.runtime = RuntimeInfo(version, torch_version, device, cuda)
    ctx.stats.update(nemo_version=version or "n/a", torch_version=torch_version or "n/a", device=device, cuda=cuda)
    return out


# ------------------------------------------------------------------------------------------ resources
def free_memory_gb() -> float:
    """MemAvailable from /proc/meminfo (Linux); falls back to total physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return float("nan")


def free_disk_gb(path: str | os.PathLike[str]) -> float:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free / 1024**3


def check_resources(ctx: CheckContext) -> list[Finding]:
    res = ctx.prof.get("resources", {}) or {}
    need_disk = float(res.get("min_free_disk_gb", 0))
    need_mem = float(res.get("min_free_mem_gb", 0))
    disk = free_disk_gb(ctx.root)
    mem = free_memory_gb()
    ok_disk = disk >= need_disk
    ok_mem = not (mem < need_mem)  # nan (unknown) passes: the kernel, not this check, will say
    ctx.stats.update(free_disk_gb=round(disk, 2), free_mem_gb=round(mem, 2))
    return [
        Finding("resources_disk", ok_disk, f"{disk:.1f} GB free at {ctx.root}, profile needs {need_disk:g} GB",
                None if ok_disk else LaneError("insufficient_resources", f"free disk {disk:.1f} GB < {need_disk:g} GB"),
                value=round(disk, 2), threshold=need_disk),
        Finding("resources_mem", ok_mem, f"{mem:.1f} GB available, profile needs {need_mem:g} GB",
                None if ok_mem else LaneError("insufficient_resources", f"free memory {mem:.1f} GB < {need_mem:g} GB"),
                value=round(mem, 2), threshold=need_mem),
    ]


# ------------------------------------------------------------------------------------------ registry
CHECKS: dict[str, CheckFn] = {
    "config": check_config,
    "head": head_finding,
    "audio": check_audio,
    "consent": check_consent,
    "consent_voice": check_consent_voice,
    "weights": check_weights,
    "runtime": check_runtime,
    "resources": check_resources,
}
ALL = tuple(CHECKS)
EARLY = ("config", "head", "audio", "consent")  # cheap: the orchestrator runs these before a run starts


def run_checks(ctx: CheckContext, names: Sequence[str],
               on_start: Callable[[int, int, str], None] | None = None) -> list[Finding]:
    """Run the named checks in order; every finding is returned, none is raised."""
    found: list[Finding] = []
    for i, name in enumerate(names, 1):
        if on_start is not None:
            on_start(i, len(names), name)
        found.extend(CHECKS[name](ctx))
    return found


def raise_first_finding(findings: Sequence[Finding]) -> None:
    for f in findings:
        if f.error is not None:
            raise f.error
