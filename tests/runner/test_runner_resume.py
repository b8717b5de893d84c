"""Resume planning (lane.runner.resume) without kernels: fingerprints and the skip decision."""

from __future__ import annotations

from pathlib import Path

from lane.core.gates import FAIL, PASS, GateResult
from lane.runner import resume as rs

GOOD = GateResult(PASS, None, "c" * 64, True)


def _nb(tmp_path: Path, text: str = "{}") -> Path:
    p = tmp_path / "stage.ipynb"
    p.write_text(text)
    return p


def test_fingerprint_ignores_run_specific_params_only(tmp_path: Path) -> None:
    nb = _nb(tmp_path)
    base = {"profile": "demo", "audio": "a.flac", "run_id": "1", "root": "/x", "resume": False}
    fp = rs.fingerprint(nb, base, "cfg", [])
    assert fp == rs.fingerprint(nb, {**base, "run_id": "2", "root": "/y", "resume": True, "cell_timeout_s": 9}, "cfg", [])
    assert fp != rs.fingerprint(nb, {**base, "profile": "production"}, "cfg", [])
    assert fp != rs.fingerprint(nb, base, "cfg2", [])
    assert fp != rs.fingerprint(nb, base, "cfg", [{"stage": "verify", "kind": "k", "path": "p", "sha256": "0" * 64}])
    assert fp != rs.fingerprint(_nb(tmp_path, '{"cells": []}'), base, "cfg", [])


def test_upstream_artifacts_stop_at_the_stage() -> None:
    results = {"verify": {"artifacts": [{"kind": "a", "path": "v.txt", "sha256": "1" * 64}]},
               "train": {"artifacts": [{"kind": "b", "path": "t.txt", "sha256": "2" * 64}]}, "export": None}
    rows = rs.upstream_artifacts(["verify", "train", "export"], "train", results)
    assert [r["path"] for r in rows] == ["v.txt"]
    assert [r["stage"] for r in rs.upstream_artifacts(["verify", "train", "export"], "export", results)] == ["verify", "train"]


def test_configs_hash_changes_with_any_config_file(tmp_path: Path) -> None:
    (tmp_path / "configs" / "profiles").mkdir(parents=True)
    (tmp_path / "configs" / "profiles" / "demo.yaml").write_text("a: 1\n")
    h1 = rs.configs_hash(tmp_path)
    (tmp_path / "configs" / "profiles" / "demo.yaml").write_text("a: 2\n")
    assert rs.configs_hash(tmp_path) != h1


def test_plan_skip_needs_a_resume_the_same_fingerprint_and_live_evidence() -> None:
    stored = {"fingerprint": "f1", "stage_record": {"duration_s": 3.0}}
    res = {"status": "done", "reason": "ok"}
    assert rs.plan_skip(resume=True, stored=stored, fp="f1", result=res, gate=GOOD).skip
    assert rs.plan_skip(resume=False, stored=stored, fp="f1", result=res, gate=GOOD).why == "not a resume"
    assert rs.plan_skip(resume=True, stored=None, fp="f1", result=res, gate=GOOD).why == "never passed in this run"
    assert rs.plan_skip(resume=True, stored=stored, fp="f2", result=res, gate=GOOD).why == "inputs changed since it passed"
    assert rs.plan_skip(resume=True, stored=stored, fp="f1", result=None, gate=GOOD).why == "its result is missing or invalid"
    broken = GateResult(FAIL, "artifact_integrity", "c" * 64, False, ["artifact changed: x"])
    assert rs.plan_skip(resume=True, stored=stored, fp="f1", result=res, gate=broken).why == "its evidence no longer verifies"


def test_skipped_record_keeps_the_original_duration() -> None:
    stored = {"fingerprint": "f", "stage_record": {"duration_s": 12.5, "notebook": "runs/r/train.ipynb"}}
    rec = rs.skipped_record("train", stored, {"status": "done", "reason": "ok"}, GOOD)
    assert rec["skipped"] and rec["duration_s"] == 0.0 and rec["original_duration_s"] == 12.5
    assert rec["notebook"] == "runs/r/train.ipynb" and rec["skip_note"] == rs.SKIP_NOTE
