"""The stage outcome rules (lane.runner.outcome) without kernels: an exception, a result and a gate
in, status, reason, detail and verdict out."""

from __future__ import annotations

from typing import Any

import pytest

from lane.core.gates import FAIL, PASS, GateResult
from lane.runner import outcome as oc


def _result(status: str = "done", reason: str = "ok", detail: str = "") -> dict[str, Any]:
    return {"run_id": "r", "stage": "train", "status": status, "reason": reason, "detail": detail,
            "checks": [], "artifacts": [], "first_fail": None}


PASSING = GateResult(PASS, None, "c" * 64, True)


def _failing(first_fail: str | None = "some_check", problems: list[str] | None = None) -> GateResult:
    return GateResult(FAIL, first_fail, "c" * 64, not problems, problems or [])


def test_a_clean_result_passes_with_reason_ok() -> None:
    status, reason, detail = oc.initial_status(None, _result(), "")
    out = oc.settle(status, reason, detail, PASSING, raised=False, has_result=True)
    assert (out.status, out.reason, out.detail, out.passed) == ("done", "ok", "", True)


def test_partial_blocked_passes_too() -> None:
    status, reason, detail = oc.initial_status(None, _result("partial-blocked"), "")
    out = oc.settle(status, reason, detail, PASSING, raised=False, has_result=True)
    assert out.passed and out.status == "partial-blocked"


def test_no_result_is_result_invalid_and_never_passes() -> None:
    status, reason, detail = oc.initial_status(None, None, "runs/r/train/result.json was not written")
    assert (status, reason) == ("failed", "result_invalid")
    gate_in = oc.gate_input("r", "train", None, status, reason)
    assert gate_in["first_fail"] == "result_invalid" and gate_in["checks"] == []
    out = oc.settle(status, reason, detail, PASSING, raised=False, has_result=False)
    assert not out.passed and out.gate.verdict == FAIL and out.reason == "result_invalid"
    assert "was not written" in out.detail


def test_a_raised_cell_fails_even_over_a_passing_result() -> None:
    status, reason, detail = oc.initial_status(("stage_failed", "cell 3: ValueError: x"), _result(), "")
    assert (status, reason) == ("failed", "stage_failed")
    out = oc.settle(status, reason, detail, PASSING, raised=True, has_result=True)
    assert not out.passed and out.gate.first_fail == "stage_failed" and out.detail == "cell 3: ValueError: x"


def test_a_lane_error_written_by_the_guard_keeps_its_code_and_detail() -> None:
    res = _result("blocked", "weights_license_blocked", "CC-BY-NC-4.0 weights")
    status, reason, detail = oc.initial_status(("stage_failed", "cell 2: LaneError: ..."), res, "")
    assert (status, reason, detail) == ("blocked", "weights_license_blocked", "CC-BY-NC-4.0 weights")


@pytest.mark.parametrize(("code", "status"), [("nemo_runtime_unavailable", "blocked"), ("kernel_died", "failed"),
                                              ("stage_timeout", "failed"), ("missing_audio_path", "failed")])
def test_raised_codes_take_their_status_from_the_reason_table(code: str, status: str) -> None:
    assert oc.initial_status((code, "d"), None, "")[0] == status


def test_gate_failed_result_keeps_gate_failed() -> None:
    res = _result("failed", "gate_failed")
    reason = oc.initial_status(("stage_failed", "x"), res, "")[1]
    assert reason == "stage_failed"  # gate_failed in a result is not a LaneError's own code


def test_a_failing_gate_over_an_ok_result_becomes_gate_failed() -> None:
    status, reason, detail = oc.initial_status(None, _result(), "")
    out = oc.settle(status, reason, detail, _failing(problems=["artifact changed: a.txt"]), raised=False,
                    has_result=True)
    assert (out.status, out.reason) == ("failed", "gate_failed") and out.detail == "artifact changed: a.txt"
    out2 = oc.settle(status, reason, detail, _failing("mcd_db"), raised=False, has_result=True)
    assert out2.detail == "first_fail=mcd_db"


def test_a_blocked_result_stays_blocked_under_a_failing_gate() -> None:
    status, reason, detail = oc.initial_status(None, _result("blocked", "not_evaluated"), "")
    out = oc.settle(status, reason, detail, _failing(), raised=False, has_result=True)
    assert (out.status, out.reason) == ("blocked", "not_evaluated")


def test_ledger_summary_is_one_line_with_a_bounded_detail() -> None:
    out = oc.Outcome("failed", "stage_failed", "x" * 500, _failing())
    line = oc.ledger_summary("train", out)
    assert line.startswith("train: failed reason=stage_failed (") and len(line) < 260 and "\n" not in line
