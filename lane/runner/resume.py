"""Resume: which stages of a run may be skipped because nothing they depend on changed since they
passed.

A stage's fingerprint covers its notebook's bytes, its parameters (run-specific ones removed), the
configs/ tree, the artifact hashes of the stages before it, the content hashes of the run's inputs
(so a recording replaced at the same path is a change) and the lane's own code (version and a tree
hash of lane/ and notebooks/). `plan_skip` is pure: given what was
stored when the stage passed, the fingerprint now, the stage's result and the gate re-evaluated over
it now, it says whether to skip and why not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.fsutil import canonical_json, sha256_bytes, sha256_file
from ..core.gates import GateResult
from ..core.paths import PACKAGE_ROOT
from ..core.stage import UpstreamArtifact
from ..core.status import StageRecord

# parameters that do not change what a stage computes: left out of its fingerprint
RUN_SPECIFIC_PARAMS = ("root", "run_id", "run_dir", "resume", "stages", "cell_timeout_s", "kernel_name")
FINGERPRINT_FILE = "fingerprint.json"
SKIP_NOTE = "skipped (unchanged since PASS)"


def configs_hash(root: Path) -> str:
    cfg = root / "configs"
    rows = []
    if cfg.is_dir():
        for p in sorted(cfg.rglob("*")):
            if p.is_file():
                rows.append([p.relative_to(cfg).as_posix(), sha256_file(p)])
    return sha256_bytes(canonical_json(rows).encode())


@lru_cache(maxsize=1)
def code_hash() -> str:
    """The lane's own code: its version and a tree hash of lane/ and notebooks/ as installed."""
    from ..core.version import VERSION as __version__

    rows = [["version", __version__]]
    for base, pattern in ((PACKAGE_ROOT / "lane", "*.py"), (PACKAGE_ROOT / "notebooks", "*.ipynb")):
        for p in sorted(base.rglob(pattern)):
            if "__pycache__" not in p.parts:
                rows.append([p.relative_to(PACKAGE_ROOT).as_posix(), sha256_file(p)])
    return sha256_bytes(canonical_json(rows).encode())


def fingerprint(notebook: Path, params: Mapping[str, Any], cfg_hash: str,
                upstream: Sequence[Mapping[str, Any]], inputs: Sequence[Mapping[str, Any]] = (),
                code: str = "") -> str:
    """A stage's input fingerprint: notebook bytes, parameters (run-specific ones removed), the
    configs/ tree, upstream stages' artifact hashes, the content of the run's inputs (recordings,
    transcript, consent, weights manifest) and the lane's own code."""
    body = {
        "notebook": sha256_file(notebook),
        "params": {k: v for k, v in params.items() if k not in RUN_SPECIFIC_PARAMS},
        "configs": cfg_hash,
        "upstream": [dict(u) for u in upstream],
        "inputs": [dict(i) for i in inputs],
        "code": code,
    }
    return sha256_bytes(canonical_json(body).encode())


def upstream_artifacts(stages: Sequence[str], upto: str,
                       results: Mapping[str, Mapping[str, Any] | None]) -> list[UpstreamArtifact]:
    """The artifacts of every stage before `upto`, in order: what `upto` consumed."""
    rows: list[UpstreamArtifact] = []
    for name in stages:
        if name == upto:
            break
        for a in (results.get(name) or {}).get("artifacts", []):
            rows.append(UpstreamArtifact(stage=name, kind=a["kind"], path=a["path"], sha256=a["sha256"]))
    return rows


@dataclass(frozen=True)
class SkipPlan:
    skip: bool
    why: str  # why it runs (empty when skipped)


def fingerprint_plan(*, resume: bool, stored: Mapping[str, Any] | None, fp: str) -> SkipPlan:
    """First, cheap half of the plan: a resumed stage whose stored fingerprint equals `fp`."""
    if not resume:
        return SkipPlan(False, "not a resume")
    if stored is None:
        return SkipPlan(False, "never passed in this run")
    if stored.get("fingerprint") != fp:
        return SkipPlan(False, "inputs changed since it passed")
    return SkipPlan(True, "")


def evidence_plan(result: Mapping[str, Any] | None, gate: GateResult | None) -> SkipPlan:
    """Second half: its result is still there and still PASSes its gate now (artifacts re-hashed)."""
    if result is None:
        return SkipPlan(False, "its result is missing or invalid")
    if gate is None or not gate.passed:
        return SkipPlan(False, "its evidence no longer verifies")
    return SkipPlan(True, "")


def plan_skip(*, resume: bool, stored: Mapping[str, Any] | None, fp: str, result: Mapping[str, Any] | None,
              gate: GateResult | None) -> SkipPlan:
    """Skip only a resumed stage whose stored fingerprint equals `fp` and whose result still PASSes
    its gate now."""
    first = fingerprint_plan(resume=resume, stored=stored, fp=fp)
    return first if not first.skip else evidence_plan(result, gate)


def skipped_record(stage: str, stored: Mapping[str, Any], result: Mapping[str, Any], gate: GateResult) -> StageRecord:
    """The stage record of a skipped stage: the one it passed with, marked skipped."""
    prev: StageRecord = dict(stored.get("stage_record") or {})  # type: ignore[assignment]
    prev.update({"name": stage, "status": result["status"], "reason": result["reason"], "verdict": gate.verdict,
                 "certificate_hash": gate.certificate_hash, "integrity_ok": gate.integrity_ok, "skipped": True,
                 "skip_note": SKIP_NOTE, "original_duration_s": prev.get("duration_s"), "duration_s": 0.0})
    return prev
