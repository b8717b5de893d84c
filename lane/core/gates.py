"""Stage gates: from a stage result decide whether the run goes on.

    verdict           PASS iff the stage status is done or partial-blocked and integrity_ok
    first_fail        the result's first failing check (or a gate-level reason)
    certificate_hash  sha256(canonical_json({run_id, stage, status, verdict, checks,
                      artifacts: [{kind, path, sha256}]}))
    integrity_ok      every artifact file re-hashed on disk (path relative to the workspace root)
                      still has the recorded sha256 (or, for a file a later stage of the same run
                      rewrote and certified again, that later stage's sha256)

The same `certificate_hash` function is what `lane ledger verify` recomputes from a ledger entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from .fsutil import canonical_json, sha256_bytes, sha256_file

PASS = "PASS"
FAIL = "FAIL"
PASSING_STATUSES = ("done", "partial-blocked")


class GateRecord(TypedDict):
    """A gate's verdict as JSON (GateResult.as_dict)."""

    verdict: str
    first_fail: str | None
    certificate_hash: str
    integrity_ok: bool
    problems: list[str]


@dataclass(frozen=True)
class GateResult:
    verdict: str  # PASS | FAIL
    first_fail: str | None
    certificate_hash: str
    integrity_ok: bool
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def as_dict(self) -> GateRecord:
        return GateRecord(verdict=self.verdict, first_fail=self.first_fail, certificate_hash=self.certificate_hash,
                          integrity_ok=self.integrity_ok, problems=list(self.problems))


def _artifact_rows(artifacts: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"kind": str(a.get("kind", "")), "path": str(a.get("path", "")), "sha256": str(a.get("sha256", ""))}
            for a in artifacts]


def certificate_hash(run_id: str, stage: str, checks: Sequence[Mapping[str, Any]],
                     artifacts: Sequence[Mapping[str, Any]], status: str, verdict: str) -> str:
    """The certificate: sha256 of the canonical JSON of run id, stage, status, verdict, checks and
    artifact hashes. Status and verdict are in it, so an entry cannot be turned from FAIL to PASS."""
    body = {"run_id": run_id, "stage": stage, "status": status, "verdict": verdict, "checks": [dict(c) for c in checks],
            "artifacts": _artifact_rows(artifacts)}
    return sha256_bytes(canonical_json(body).encode("utf-8"))


def resolve_artifact(path: str, root: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p if p.is_absolute() else Path(root) / p


def artifact_problems(artifacts: Sequence[Mapping[str, Any]], root: str | os.PathLike[str],
                      superseded: Mapping[str, str] | None = None) -> list[str]:
    """One line per artifact whose file is missing or whose sha256 changed.

    `superseded` maps a path to the hash a later stage of the same run certified for it (the validate
    stage rewrites the bundle manifest that export certified); such a file is checked against that
    later hash, the same rule `lane ledger verify` applies across entries."""
    problems: list[str] = []
    for a in artifacts:
        path = resolve_artifact(str(a.get("path", "")), root)
        if not path.is_file():
            problems.append(f"artifact missing: {a.get('path')}")
            continue
        digest = sha256_file(path)
        expected = (superseded or {}).get(str(a.get("path")), a.get("sha256"))
        if digest != expected:
            problems.append(f"artifact changed: {a.get('path')} (recorded {str(expected)[:12]}, "
                            f"on disk {digest[:12]})")
    return problems


def later_hashes(results: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """path -> sha256 as certified by the last of `results` (later stages of one run) that names it."""
    out: dict[str, str] = {}
    for res in results:
        for a in res.get("artifacts") or []:
            out[str(a.get("path", ""))] = str(a.get("sha256", ""))
    return out


def evaluate(result: Mapping[str, Any], root: str | os.PathLike[str],
             superseded: Mapping[str, str] | None = None) -> GateResult:
    """Gate one stage result (as written to runs/<run_id>/<stage>/result.json).

    The certificate is always computed from the recorded hashes; integrity re-hashes the files on
    disk against them, or against a later stage's hash for paths in `superseded`."""
    run_id, stage = str(result.get("run_id", "")), str(result.get("stage", ""))
    checks = list(result.get("checks") or [])
    artifacts = list(result.get("artifacts") or [])
    problems = artifact_problems(artifacts, root, superseded)
    integrity_ok = not problems
    status = str(result.get("status"))
    first_fail = result.get("first_fail")
    if status in PASSING_STATUSES and integrity_ok:
        return GateResult(PASS, None, certificate_hash(run_id, stage, checks, artifacts, status, PASS), True, problems)
    if first_fail is None:
        first_fail = "artifact_integrity" if not integrity_ok else f"stage_{status}"
    return GateResult(FAIL, str(first_fail), certificate_hash(run_id, stage, checks, artifacts, status, FAIL),
                      integrity_ok, problems)


def certify(result: Mapping[str, Any] | None, run_id: str, stage: str, status: str, verdict: str) -> str:
    """The certificate of a stage outcome (the runner's final status and verdict over the result)."""
    res = result or {}
    return certificate_hash(run_id, stage, list(res.get("checks") or []), list(res.get("artifacts") or []), status,
                            verdict)
