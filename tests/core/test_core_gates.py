"""Gates: verdict, first_fail, certificate hash and integrity from a stage result and the files on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lane.core.fsutil import canonical_json, sha256_bytes, sha256_file
from lane.core.gates import certificate_hash, evaluate, later_hashes


def _result(root: Path, status: str = "done", first_fail: str | None = None) -> dict[str, Any]:
    art = root / "runs" / "r1" / "verify" / "manifest.json"
    art.parent.mkdir(parents=True, exist_ok=True)
    art.write_text('{"clips": 3}\n')
    return {"run_id": "r1", "stage": "verify", "status": status, "reason": "ok", "first_fail": first_fail,
            "checks": [{"id": "audio_ok", "ok": True, "detail": "3 files"}],
            "artifacts": [{"kind": "dataset_manifest", "path": "runs/r1/verify/manifest.json", "sha256": sha256_file(art)}],
            "stats": {}}


def test_certificate_is_sha256_of_canonical_json(tmp_path: Path) -> None:
    r = _result(tmp_path)
    body = {"run_id": "r1", "stage": "verify", "status": "done", "verdict": "PASS", "checks": r["checks"],
            "artifacts": r["artifacts"]}
    cert = certificate_hash("r1", "verify", r["checks"], r["artifacts"], "done", "PASS")
    assert cert == sha256_bytes(canonical_json(body).encode())
    other = certificate_hash("r1", "verify", [{"id": "audio_ok", "ok": False, "detail": "3 files"}], r["artifacts"],
                             "done", "PASS")
    assert other != cert
    assert certificate_hash("r2", "verify", r["checks"], r["artifacts"], "done", "PASS") != cert
    # verdict and status are certified: a FAIL cannot be relabelled PASS without breaking the certificate
    assert certificate_hash("r1", "verify", r["checks"], r["artifacts"], "done", "FAIL") != cert
    assert certificate_hash("r1", "verify", r["checks"], r["artifacts"], "failed", "PASS") != cert


@pytest.mark.parametrize(("status", "verdict"), [("done", "PASS"), ("partial-blocked", "PASS"),
                                                 ("blocked", "FAIL"), ("failed", "FAIL")])
def test_verdict_follows_status(tmp_path: Path, status: str, verdict: str) -> None:
    gate = evaluate(_result(tmp_path, status, None if verdict == "PASS" else "audio_ok"), tmp_path)
    assert gate.verdict == verdict and gate.integrity_ok
    assert gate.first_fail == (None if verdict == "PASS" else "audio_ok")


def test_changed_or_missing_artifact_breaks_integrity(tmp_path: Path) -> None:
    r = _result(tmp_path)
    assert evaluate(r, tmp_path).passed
    art = tmp_path / "runs" / "r1" / "verify" / "manifest.json"
    art.write_text('{"clips": 4}\n')
    gate = evaluate(r, tmp_path)
    assert (gate.verdict, gate.integrity_ok, gate.first_fail) == ("FAIL", False, "artifact_integrity")
    assert "artifact changed: runs/r1/verify/manifest.json" in gate.problems[0]
    art.unlink()
    gate = evaluate(r, tmp_path)
    assert not gate.integrity_ok and gate.problems == ["artifact missing: runs/r1/verify/manifest.json"]
    # the certificate itself is from the recorded result, so it does not move with the file
    assert gate.certificate_hash == certificate_hash("r1", "verify", r["checks"], r["artifacts"], "done", "FAIL")


def test_file_rewritten_by_a_later_stage_is_checked_against_its_later_hash(tmp_path: Path) -> None:
    """Export certifies the bundle manifest; validate rewrites it (validation section) and certifies it
    again. Export's integrity then holds against validate's hash, and only against that hash."""
    export = _result(tmp_path)
    art = tmp_path / export["artifacts"][0]["path"]
    art.write_text('{"clips": 3, "validation": {"ok": true}}\n')
    validate = {**export, "stage": "validate",
                "artifacts": [{**export["artifacts"][0], "sha256": sha256_file(art)}]}
    assert not evaluate(export, tmp_path).integrity_ok  # on its own, the rewrite is a change
    gate = evaluate(export, tmp_path, later_hashes([validate]))
    assert gate.verdict == "PASS" and gate.integrity_ok
    art.write_text('{"clips": 4}\n')  # tampering after validate still shows
    gate = evaluate(export, tmp_path, later_hashes([validate]))
    assert gate.verdict == "FAIL" and not gate.integrity_ok and gate.first_fail == "artifact_integrity"
