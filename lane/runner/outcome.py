"""The rules that turn what happened to a stage into its outcome. Pure functions: no files, no
kernels, so every rule is unit-tested directly (tests/runner/test_runner_outcome.py).

Inputs: the exception papermill raised (already classified into (reason, detail) by
`lane.runner.kernel.classify_exception`, or None), the stage result the notebook wrote (or None and
why), and the gate computed over that result. Output: the stage's status, reason, detail and gate.

The rules, in order:

1. The notebook raised:
   - a result written by `StageRun.guard` for a LaneError keeps its own code (the richer detail);
   - otherwise the classified exception's code;
   - status `blocked` when the result says so or the code is a blocking one, else `failed`;
   - the gate FAILs whatever the result says.
2. The notebook finished but left no valid result: `result_invalid`, failed, gate FAIL.
3. The notebook finished with a result: its own status, reason and detail.
4. A FAILing gate over an `ok` result becomes `gate_failed` (detail: the gate's problems, or its
   first failing check), and a passing status becomes `failed`. A PASSing gate means reason `ok`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Unpack

from ..core.gates import FAIL, GateResult
from ..core.reasons import fail_status
from ..core.stage import StageStatus
from ..core.status import StageRecord


@dataclass(frozen=True)
class Outcome:
    status: StageStatus
    reason: str
    detail: str
    gate: GateResult

    @property
    def passed(self) -> bool:
        return self.gate.passed


def initial_status(exc_reason: tuple[str, str] | None, result: Mapping[str, Any] | None,
                   problem: str) -> tuple[StageStatus, str, str]:
    """(status, reason, detail) before the gate: rules 1-3."""
    if exc_reason is not None:
        reason, detail = exc_reason
        if result is not None and result["status"] in ("blocked", "failed") \
                and result["reason"] not in ("ok", "gate_failed"):
            reason, detail = str(result["reason"]), str(result.get("detail") or detail)
        status: StageStatus = "blocked" if (result or {}).get("status") == "blocked" else fail_status(reason)
        return status, reason, detail
    if result is None:
        return "failed", "result_invalid", problem
    return result["status"], str(result["reason"]), str(result.get("detail", ""))


def gate_input(run_id: str, stage: str, result: Mapping[str, Any] | None, status: str,
               reason: str) -> Mapping[str, Any]:
    """What the gate evaluates: the result, or a stand-in that can only FAIL when there is none."""
    if result is not None:
        return result
    return {"run_id": run_id, "stage": stage, "status": status, "checks": [], "artifacts": [], "first_fail": reason}


def settle(status: StageStatus, reason: str, detail: str, gate: GateResult, *, raised: bool,
           has_result: bool) -> Outcome:
    """Rule 4, plus: a stage that raised or wrote no result never PASSes."""
    if raised or not has_result:
        gate = GateResult(FAIL, gate.first_fail or reason, gate.certificate_hash, gate.integrity_ok, gate.problems)
    if not gate.passed:
        if reason == "ok":
            reason = "gate_failed"
            detail = "; ".join(gate.problems) or f"first_fail={gate.first_fail}"
        if status in ("done", "partial-blocked"):
            status = "failed"
    else:
        reason = "ok"
    return Outcome(status, reason, detail, gate)


def ledger_summary(stage: str, outcome: Outcome) -> str:
    """The ledger entry's one-line behaviour summary."""
    detail = outcome.detail
    return f"{stage}: {outcome.status} reason={outcome.reason}" + (f" ({detail[:200]})" if detail else "")


def stage_record(stage: str, outcome: Outcome, **ran: Unpack[StageRecord]) -> StageRecord:
    """The record of a stage that ran: its outcome and gate, plus what running it left (`ran`:
    duration, notebook, html, source notebook, finish time, commit, CPU and GPU seconds)."""
    record: StageRecord = {
        "name": stage, "status": outcome.status, "reason": outcome.reason, "detail": outcome.detail,
        "verdict": outcome.gate.verdict, "first_fail": outcome.gate.first_fail,
        "certificate_hash": outcome.gate.certificate_hash, "integrity_ok": outcome.gate.integrity_ok,
        "skipped": False}
    record.update(ran)
    return record
