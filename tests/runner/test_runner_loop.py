"""The runner end to end with real papermill kernels: every failure kind keeps its reason code, exit
code, final [tts-prod] line, train_status, ledger entry and a NO-GO report; an honest run is GO."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from lane_runs import STAGES, make_workspace

from lane.core import ledger
from lane.core.fsutil import read_json
from lane.core.status import orchestrator_log_path, train_status_path

LANE = "tts_prod_train_nemo"


def final_line(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return lines[-1]


def assert_failure_contract(root: Path, outcome: Any, out: str, *, reason: str, exit_code: int, status: str = "failed") -> dict[str, Any]:
    assert (outcome.status, outcome.reason, outcome.exit_code) == (status, reason, exit_code), outcome
    assert final_line(out) == f"[tts-prod] status={status} reason={reason} run_id={outcome.run_id} lane={LANE}"
    ts = read_json(train_status_path(root, LANE))
    assert (ts["run_id"], ts["status"], ts["reason"], ts["exit_code"]) == (outcome.run_id, status, reason, exit_code)
    assert ts["stages"]["verify"]["verdict"] == "FAIL"
    assert ts["stages"]["verify"]["reason"] == reason
    res = ledger.verify(root)
    assert res.ok, res.problems
    entries = ledger.read_entries(root)
    assert [e["verdict"] for e in entries] == ["FAIL"]
    assert entries[0]["runId"] == outcome.run_id and entries[0]["reason"] == reason
    md = (root / "reports" / f"readiness-{outcome.run_id}.md").read_text(encoding="utf-8")
    html = (root / "reports" / f"readiness-{outcome.run_id}.html").read_text(encoding="utf-8")
    assert "# Verdict: NO-GO" in md and f"`{reason}`" in md
    assert 'id="verdict">NO-GO<' in html
    assert f"[tts-prod] status={status} reason={reason}" in orchestrator_log_path(root).read_text(encoding="utf-8")
    return ts


@pytest.mark.parametrize(("notebook", "reason", "exit_code", "detail_re"), [
    ("check_fails", "gate_failed", 5, r""),
    ("raises", "stage_failed", 4, r"^cell \d+ \(index \d+\): ValueError: boom: the fixture cell raised$"),
    ("kernel_dies", "kernel_died", 4, r"^cell \d+ \(index 4\): kernel died"),
    ("no_result", "result_invalid", 4, r"result\.json was not written"),
    ("lane_error", "weights_license_blocked", 5, r"^fixture weights are CC-BY-NC-4\.0$"),
])
def test_failure_kind_maps_to_its_code(workspace: Path, runner: Any, capsys: pytest.CaptureFixture[str],
                                       notebook: str, reason: str, exit_code: int, detail_re: str) -> None:
    outcome = runner(workspace, {"verify": notebook, "train": "pass"})
    out = capsys.readouterr().out
    ts = assert_failure_contract(workspace, outcome, out, reason=reason, exit_code=exit_code)
    assert re.search(detail_re, outcome.detail), outcome.detail
    assert "train" not in ts["stages"], "the runner must stop at the first failing gate"
    assert not (workspace / "runs" / outcome.run_id / "train.ipynb").exists()
    if notebook == "check_fails":
        assert ts["stages"]["verify"]["first_fail"] == "loudness_in_range"
    if notebook == "raises":  # the executed notebook and its HTML show the failing cell's error
        html = (workspace / "runs" / outcome.run_id / "verify.html").read_text(encoding="utf-8")
        assert "boom: the fixture cell raised" in html
        assert "def broken()" not in html, "code cells are hidden in the stage HTML"


def test_lane_error_without_result_keeps_its_code(workspace: Path, runner: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Raised outside StageRun.guard, no result is written: the code comes from the error name and value."""
    outcome = runner(workspace, {"verify": "lane_error"}, extra_params={"use_guard": False})
    assert not (workspace / "runs" / outcome.run_id / "verify" / "result.json").exists()
    assert_failure_contract(workspace, outcome, capsys.readouterr().out, reason="weights_license_blocked", exit_code=5)
    assert outcome.detail == "fixture weights are CC-BY-NC-4.0"


def test_cell_timeout_maps_to_stage_timeout(workspace: Path, runner: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = runner(workspace, {"verify": "sleeps"}, cell_timeout_s=3, extra_params={"sleep_s": 600})
    out = capsys.readouterr().out
    assert_failure_contract(workspace, outcome, out, reason="stage_timeout", exit_code=4)
    assert "cell_timeout_s=3" in outcome.detail and re.search(r"cell \d+ \(index 4\)", outcome.detail)
    assert outcome.stages[0]["duration_s"] < 600  # cut by the timeout, not run to its end


def test_honest_run_is_go_with_evidence(completed_run: tuple[Path, Any]) -> None:
    root, outcome = completed_run
    assert (outcome.status, outcome.reason, outcome.exit_code) == ("completed", "ok", 0)
    assert [s["verdict"] for s in outcome.stages] == ["PASS"] * 4
    assert all(s["integrity_ok"] for s in outcome.stages)
    run_dir = root / "runs" / outcome.run_id
    for stage in STAGES:
        assert (run_dir / f"{stage}.ipynb").is_file() and (run_dir / f"{stage}.html").is_file()
        assert (run_dir / stage / "result.json").is_file()
    settings = read_json(run_dir / "settings.json")
    assert settings["settings"]["stages"] == list(STAGES) and settings["run_id"] == outcome.run_id
    ts = read_json(train_status_path(root, LANE))
    assert ts["status"] == "completed" and ts["exit_code"] == 0
    assert ts["bundle_path"] == f"bundles/fixture_voice/candidates/{outcome.run_id}"
    assert ts["verdict"] == "GO" and ts["verdict_reasons"] == [] and ts["promoted"] is None
    assert ts["last_progress"]["stage"] == "validate" and ts["last_progress"]["step"] == 3
    assert ts["last_stats"]["stage"] == "validate"
    assert ts["report_path"] == f"reports/readiness-{outcome.run_id}.md"
    assert ledger.verify(root).ok
    assert [e["stage_id"] for e in ledger.read_entries(root)] == list(STAGES)
    md = (root / "reports" / f"readiness-{outcome.run_id}.md").read_text(encoding="utf-8")
    assert md.startswith("# Verdict: GO")
    assert md.count("- [x] ") == 12 and "- [ ] " not in md
    html = outcome.report_paths[1].read_text(encoding="utf-8")
    assert 'id="verdict">GO<' in html
    assert '<img src="data:image/png;base64,' in html and '<source src="data:audio/wav;base64,' in html
    assert f'href="../runs/{outcome.run_id}/train.html"' in html
    log = orchestrator_log_path(root).read_text(encoding="utf-8")
    assert "PROGRESS stage=export step=3 total=3" in log
    assert f"[tts-prod] status=completed reason=ok run_id={outcome.run_id} lane={LANE}" in log


def test_missing_evidence_is_no_go(workspace: Path, runner: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A run that passes every gate it ran is still NO-GO when the bundle stage never ran and the
    lane is not promotable: both items show as missing / failed."""
    outcome = runner(workspace, {"verify": "pass"})
    assert outcome.status == "completed"
    assert final_line(capsys.readouterr().out).startswith("[tts-prod] status=completed reason=ok")
    md = (workspace / "reports" / f"readiness-{outcome.run_id}.md").read_text(encoding="utf-8")
    assert "# Verdict: NO-GO" in md
    assert re.search(r"- \[ \] \*\*the candidate bundle was validated and its hashes verify\*\* — missing", md)
    assert re.search(r"- \[ \] \*\*lane, profile and models promotable\*\* — failed: the demo profile is not promotable", md)
    assert re.search(r"- \[x\] \*\*weights manifest ok and every licence allows commercial use\*\*", md)


def test_output_streams_while_the_cell_runs(workspace: Path) -> None:
    """A PROGRESS line printed before a blocking wait reaches the orchestrator log while the cell still
    waits: the log, on seeing it, writes the file that releases the cell (the cell prints whether it
    was released; unreleased, it would give up only after 600 s)."""
    from lane_runs import fixture_nb

    from lane.core.config import Settings
    from lane.core.status import OrchestratorLog
    from lane.runner import execute_run

    seen: list[str] = []

    class ReleasingLog(OrchestratorLog):
        def write(self, line: str) -> None:
            seen.append(line)
            if line.startswith("PROGRESS stage=verify step=1 total=2"):
                (workspace / "release").write_text("seen\n")
            super().write(line)

    log = ReleasingLog(workspace)
    try:
        outcome = execute_run(Settings(stages=["verify"], cell_timeout_s=900), workspace,
                              notebooks={"verify": fixture_nb("sleeps")}, extra_params={"sleep_s": 600, "until": "release"},
                              log=log)
    finally:
        log.close()
    assert outcome.status == "completed"
    assert "released=True" in seen, "the PROGRESS line was not streamed while the cell ran"
    assert seen.index("released=True") > next(i for i, ln in enumerate(seen) if ln.startswith("PROGRESS stage=verify step=1"))


def test_resume_skips_what_passed(workspace: Path, runner: Any, capsys: pytest.CaptureFixture[str]) -> None:
    nbs = dict.fromkeys(STAGES, "pass")
    params = {"promotable": True, "require_file": "unlock_train", "require_stages": ["train"]}
    first = runner(workspace, nbs, extra_params=params, profile="production")
    run_id = first.run_id
    assert (first.status, first.reason) == ("failed", "gate_failed")
    assert [(s["name"], s["verdict"]) for s in first.stages] == [("verify", "PASS"), ("train", "FAIL")]
    assert first.stages[1]["first_fail"] == "required_file_present"

    (workspace / "unlock_train").write_text("ok\n")
    second = runner(workspace, nbs, run_id=run_id, resume=True, extra_params=params, profile="production")
    assert second.status == "completed"
    assert [s["skipped"] for s in second.stages] == [True, False, False, False]

    entries_before = len(ledger.read_entries(workspace))
    third = runner(workspace, nbs, run_id=run_id, resume=True, extra_params=params, profile="production")
    assert third.status == "completed"
    assert [s["skipped"] for s in third.stages] == [True, True, True, True]
    assert len(ledger.read_entries(workspace)) == entries_before, "skipped stages add no ledger entry"
    md = (workspace / "reports" / f"readiness-{run_id}.md").read_text(encoding="utf-8")
    assert md.count("skipped (unchanged since PASS)") == 4
    assert "# Verdict: GO" in md
    assert ledger.verify(workspace).ok

    # a changed artifact makes its stage run again; a downstream stage whose inputs come out the same stays skipped
    out_txt = workspace / "runs" / run_id / "train" / "out.txt"
    out_txt.write_text("tampered\n")
    fourth = runner(workspace, nbs, run_id=run_id, resume=True, extra_params=params, profile="production")
    assert [s["skipped"] for s in fourth.stages] == [True, False, True, True]
    assert out_txt.read_text() == "train:x\n"

    # a changed config file changes every stage's inputs
    with (workspace / "configs" / "profiles" / "demo.yaml").open("a") as f:
        f.write("# edited\n")
    fifth = runner(workspace, nbs, run_id=run_id, resume=True, extra_params=params, profile="production")
    assert fifth.status == "completed"
    assert [s["skipped"] for s in fifth.stages] == [False, False, False, False]
    # and so does a changed parameter
    sixth = runner(workspace, {"verify": "pass"}, run_id=run_id, resume=True, extra_params={**params, "payload": "y"},
                   profile="production")
    assert [s["skipped"] for s in sixth.stages] == [False]
    assert ledger.verify(workspace).ok
    capsys.readouterr()


def test_resume_reruns_the_failed_stage_only(workspace: Path, runner: Any) -> None:
    nbs = {"verify": "pass", "train": "check_fails"}
    first = runner(workspace, nbs)
    assert (first.reason, [s["name"] for s in first.stages]) == ("gate_failed", ["verify", "train"])
    fixed = runner(workspace, {"verify": "pass", "train": "pass"}, run_id=first.run_id, resume=True)
    assert fixed.status == "completed"
    assert [s["skipped"] for s in fixed.stages] == [True, False]
    ts = json.loads((workspace / "runs" / first.run_id / "train_status.json").read_text())
    assert ts["stages"]["verify"]["skipped"] is True and ts["stages"]["train"]["verdict"] == "PASS"


def test_stale_results_are_not_evidence(workspace: Path, runner: Any) -> None:
    """After a resume whose first stage now fails, the earlier attempt's export result on disk must
    not tick "bundle validated" in the report."""
    first = runner(workspace, {"verify": "pass", "export": "pass"}, extra_params={"promotable": True})
    assert first.status == "completed"
    again = runner(workspace, {"verify": "check_fails", "export": "pass"}, run_id=first.run_id, resume=True)
    assert again.reason == "gate_failed"
    assert (workspace / "runs" / first.run_id / "export" / "result.json").is_file()
    md = (workspace / "reports" / f"readiness-{first.run_id}.md").read_text(encoding="utf-8")
    assert re.search(r"- \[ \] \*\*the candidate bundle was validated and its hashes verify\*\* — missing", md)
    assert "| export | not run |" in md


def test_resume_of_unknown_run(workspace: Path, runner: Any, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = runner(workspace, {"verify": "pass"}, run_id="no-such-run", resume=True)
    assert (outcome.reason, outcome.exit_code) == ("run_not_found", 3)
    assert final_line(capsys.readouterr().out) == f"[tts-prod] status=failed reason=run_not_found run_id=no-such-run lane={LANE}"
    assert read_json(train_status_path(workspace, LANE))["reason"] == "run_not_found"
    assert not (workspace / "runs" / "no-such-run").exists()


def test_new_run_needs_make_workspace_configs(tmp_path: Path, runner: Any) -> None:
    """Result validation falls back to root/configs when the package has no configs/ beside it;
    here both exist, and the run validates against the schema (a schema break is result_invalid)."""
    root = make_workspace(tmp_path / "ws")
    outcome = runner(root, {"verify": "pass"})
    assert outcome.status == "completed"
    res_file = root / "runs" / outcome.run_id / "verify" / "result.json"
    from lane.runner import load_result

    data = read_json(res_file)
    data["status"] = "excellent"
    res_file.write_text(json.dumps(data))
    res, problem = load_result(res_file.parent.parent, "verify", root)
    assert res is None and "breaks the schema at status" in problem


def test_third_party_output_stays_in_the_run_log(ws: Path, lane_cli: Any) -> None:
    """What libraries write on the kernel's stderr (warnings, logs, progress) goes to the run log, not
    the terminal; a line reporting an error still shows; the kernel itself runs over unix sockets,
    so ipykernel has no unencrypted-TCP warning to print."""
    from lane_runs import install_notebooks

    noise = ("import sys, warnings\n"
             "warnings.warn('IProgress not found. Please update jupyter and ipywidgets.', UserWarning)\n"
             "print('GPU available: False, used: False', file=sys.stderr)\n"
             "print('[NeMo W 2026-12-01 nemo_logging:364] The `srun` command is available', file=sys.stderr)\n"
             "print('somelib: ERROR the cache is unwritable', file=sys.stderr)\n")
    install_notebooks(ws, {"verify": "pass"}, {"verify": noise})
    done = lane_cli(ws, "run", "--stages", "verify", "--audio", "data/speech.wav")
    assert done.rc == 0, done.out + done.err
    terminal = done.out + done.err
    for quiet in ("IProgress not found", "GPU available", "srun", "without encryption", "Warning"):
        assert quiet not in terminal, quiet
    assert "somelib: ERROR the cache is unwritable" in done.err
    assert re.search(r"runner: [3-9] line\(s\) of third-party warnings, logs and progress output are in "
                     r"artifacts/voice_train_prod\.orchestrator\.log only", done.out), done.out
    log = done.log
    assert "stderr: GPU available: False, used: False" in log and "IProgress not found" in log
    assert "somelib: ERROR the cache is unwritable" in log
