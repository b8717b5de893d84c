"""The hash-chained ledger: honest runs verify; editing, dropping or reordering an entry, or
changing an artifact, is caught by `lane ledger verify` (non-zero); concurrent appends keep the chain."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lane.core import ledger
from lane.core.gates import evaluate
from lane.core.reasons import exit_code


def _lines(root: Path) -> list[str]:
    return (root / "reports" / "ledger.jsonl").read_text(encoding="utf-8").splitlines()


def _write_lines(root: Path, lines: list[str]) -> None:
    (root / "reports" / "ledger.jsonl").write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")


def _cli_verify(python_exe: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python_exe, "-m", "lane", "ledger", "verify", "--root", str(root)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_honest_ledger_verifies_and_renders(completed_run: tuple[Path, Any], python_exe: str) -> None:
    root, outcome = completed_run
    res = ledger.verify(root)
    assert (res.ok, res.entries) == (True, 4)
    proc = _cli_verify(python_exe, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ledger ok: 4 entries" in proc.stdout
    entries = ledger.read_entries(root)
    assert entries[0]["prev_hash"] == "0" * 64
    for e in entries:  # the seed's per-prompt report fields
        for key in ("stage_id", "files_changed", "behavior_delta", "checks_run", "verdict", "firstFail",
                    "certificateHash", "integrityOk", "traceId", "runId", "commit_sha", "status", "prev_hash"):
            assert key in e, key
    md = (root / "reports" / "LEDGER.md").read_text(encoding="utf-8")
    for e in entries:
        assert f"| {e['certificateHash']} |" in md
    assert md.count(f"| {outcome.run_id} |") == 4


@pytest.mark.parametrize("tamper", ["edit_field", "edit_last", "drop_middle", "drop_last", "reorder",
                                    "not_json", "forge_certificate"])
def test_ledger_tampering_is_caught(completed_copy: tuple[Path, Any], python_exe: str, tamper: str) -> None:
    root, _ = completed_copy
    lines = _lines(root)
    if tamper == "edit_field":
        e = json.loads(lines[1])
        e["verdict"] = "FAIL"
        lines[1] = json.dumps(e, sort_keys=True, separators=(",", ":"))
    elif tamper == "edit_last":
        lines[-1] = lines[-1].replace('"status":"done"', '"status":"blocked"')
    elif tamper == "drop_middle":
        del lines[1]
    elif tamper == "drop_last":
        del lines[-1]
    elif tamper == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    elif tamper == "not_json":
        lines[2] = lines[2][:-5]
    elif tamper == "forge_certificate":  # claim a check passed, keep the old certificate and re-chain
        entries = [json.loads(x) for x in lines]
        entries[0]["checks_run"][0]["detail"] = "forged"
        prev = "0" * 64
        lines = []
        for e in entries:
            e["prev_hash"] = prev
            line = json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            lines.append(line)
            prev = __import__("hashlib").sha256(line.encode()).hexdigest()
    _write_lines(root, lines)
    res = ledger.verify(root)
    assert not res.ok
    assert res.first_broken_index is not None and res.problem
    if tamper == "forge_certificate":
        assert res.first_broken_index == 0 and "certificateHash" in res.problem
    if tamper in ("edit_field", "drop_middle", "reorder"):
        assert res.first_broken_index in (1, 2)
    proc = _cli_verify(python_exe, root)
    assert proc.returncode == exit_code("ledger_broken") != 0
    assert "ledger broken" in proc.stdout and "first broken entry" in proc.stdout


@pytest.mark.parametrize("how", ["change", "delete"])
def test_changed_artifact_is_caught(completed_copy: tuple[Path, Any], python_exe: str, how: str) -> None:
    root, outcome = completed_copy
    rel = f"bundles/fixture_voice/candidates/{outcome.run_id}/fastpitch.onnx"
    target = root / rel
    if how == "change":
        target.write_bytes(b"a different model")
    else:
        target.unlink()
    res = ledger.verify(root)
    assert not res.ok and res.first_broken_index == 2
    assert rel in (res.problem or "")
    assert _cli_verify(python_exe, root).returncode == exit_code("ledger_broken")
    # the gate sees the same change
    result = json.loads((root / "runs" / outcome.run_id / "export" / "result.json").read_text())
    gate = evaluate(result, root)
    assert (gate.verdict, gate.integrity_ok) == ("FAIL", False)


def test_later_run_supersedes_rewritten_artifact(completed_copy: tuple[Path, Any], runner: Any) -> None:
    """A second honest run that rewrites the same bundle path leaves the ledger green: the path is
    checked against its latest entry."""
    root, _ = completed_copy
    outcome = runner(root, {"verify": "pass", "train": "pass", "export": "pass"}, extra_params={"payload": "second"})
    assert outcome.status == "completed"
    res = ledger.verify(root)
    assert res.ok and res.entries == 7, res.problems


def _append_many(root: str, worker: int, count: int) -> None:
    from lane.core.gates import GateResult

    for i in range(count):
        art = Path(root) / "arts" / f"w{worker}_{i}.txt"
        art.parent.mkdir(parents=True, exist_ok=True)
        art.write_text(f"{worker}:{i}\n")
        from lane.core.fsutil import sha256_file
        from lane.core.gates import certificate_hash

        result = {"run_id": f"run-{worker}", "stage": f"s{i}", "status": "done",
                  "checks": [{"id": "c", "ok": True, "detail": str(i)}],
                  "artifacts": [{"kind": "k", "path": f"arts/w{worker}_{i}.txt", "sha256": sha256_file(art)}]}
        cert = certificate_hash(result["run_id"], result["stage"], result["checks"], result["artifacts"], "done", "PASS")
        gate = GateResult("PASS", None, cert, True)
        ledger.append(root, ledger.make_entry(run_id=result["run_id"], stage=result["stage"], lane="t",
                                              result=result, gate=gate, status="done", reason="ok",
                                              summary=f"worker {worker} entry {i}", commit_sha="0" * 40))


def test_concurrent_appends_keep_one_valid_chain(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, 8)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    res = ledger.verify(tmp_path)
    assert res.ok, res.problems
    assert res.entries == 32
    entries = ledger.read_entries(tmp_path)
    for w in range(4):  # each writer's entries are all there, in its own order
        mine = [e["stage_id"] for e in entries if e["runId"] == f"run-{w}"]
        assert mine == [f"s{i}" for i in range(8)]
    assert len((tmp_path / "reports" / "LEDGER.md").read_text().splitlines()) == 8 + 32


def test_empty_ledger_verifies(tmp_path: Path) -> None:
    assert ledger.verify(tmp_path).ok
    assert ledger.verify_cli(tmp_path) == 0


def _one_run(root: str, i: int) -> None:
    import contextlib
    import io

    from lane.core.config import Settings
    from lane.runner import execute_run

    nb = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks" / "pass.ipynb"
    with contextlib.redirect_stdout(io.StringIO()):
        out = execute_run(Settings(lane=f"concurrent_{i}", stages=["verify", "train"]), Path(root),
                          notebooks={"verify": nb, "train": nb}, extra_params={"payload": str(i)})
    assert out.status == "completed", out


def test_four_concurrent_runs_leave_a_valid_chain(tmp_path: Path) -> None:
    """Four real runs (kernels and all) in one workspace at once: eight entries, one valid chain."""
    from lane_runs import make_workspace

    root = make_workspace(tmp_path / "ws")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_one_run, args=(str(root), i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    res = ledger.verify(root)
    assert res.ok, res.problems
    entries = ledger.read_entries(root)
    assert len(entries) == 8 and len({e["runId"] for e in entries}) == 4
    for run_id in {e["runId"] for e in entries}:
        assert [e["stage_id"] for e in entries if e["runId"] == run_id] == ["verify", "train"]


# ------------------------------------------------------------------------------ rewrites a hash chain cannot catch
def _rechain(root: Path, entries: list[dict[str, Any]], *, sign_with: Any = None) -> None:
    """Rewrite the ledger as an attacker with write access would: every prev_hash recomputed, the head
    rewritten to match (and, with `sign_with`, everything re-signed with that key)."""
    import hashlib

    prev = "0" * 64
    lines = []
    for e in entries:
        e["prev_hash"] = prev
        if sign_with is not None:
            e.pop("signature", None)
            e["signature"] = sign_with.sign(ledger._payload(e))
        line = json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        lines.append(line)
        prev = hashlib.sha256(line.encode()).hexdigest()
    _write_lines(root, lines)
    if sign_with is not None:
        head = ledger._head(len(lines), prev, sign_with)
    else:
        head = {"entries": len(lines), "last_hash": prev, "version": len(lines), "timestamp": "2026-12-01T00:00:00Z"}
    (root / "reports" / "ledger.head.json").write_text(json.dumps(head))


def test_edited_entry_with_every_later_hash_recomputed_is_caught(completed_copy: tuple[Path, Any]) -> None:
    root, _ = completed_copy
    entries = [json.loads(x) for x in _lines(root)]
    entries[1]["behavior_delta"] = "train: done reason=ok (reviewed)"
    _rechain(root, entries)
    res = ledger.verify(root)
    assert not res.ok and res.first_broken_index == 1 and "signature" in (res.problem or "")


def test_dropped_last_entry_with_the_head_rewritten_is_caught(completed_copy: tuple[Path, Any]) -> None:
    root, outcome = completed_copy
    entries = [json.loads(x) for x in _lines(root)][:-1]
    _rechain(root, entries)
    res = ledger.verify(root)
    assert not res.ok
    assert any("head: signature" in p for p in res.problems)
    assert any(f"no ledger entry for run {outcome.run_id} stage validate" in p for p in res.problems)


def test_deleted_ledger_next_to_recorded_runs_is_caught(completed_copy: tuple[Path, Any], python_exe: str) -> None:
    root, outcome = completed_copy
    (root / "reports" / "ledger.jsonl").unlink()
    (root / "reports" / "ledger.head.json").unlink()
    res = ledger.verify(root)
    assert not res.ok and "missing or empty" in (res.problem or "") and outcome.run_id in (res.problem or "")
    assert _cli_verify(python_exe, root).returncode == exit_code("ledger_broken")


def test_entries_signed_with_another_key_are_caught(completed_copy: tuple[Path, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker's own key re-signs the whole rewritten chain and head: still not a trusted key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lane.core.signing import Signer

    root, _ = completed_copy
    other = Signer(Ed25519PrivateKey.generate(), tmp_path / "other.pem")
    entries = [json.loads(x) for x in _lines(root)]
    entries[0]["verdict"] = "PASS"
    _rechain(root, entries, sign_with=other)
    res = ledger.verify(root)
    assert not res.ok and "not a trusted key" in (res.problem or "")
    # pinned in the workspace's own config it still counts for nothing: trust anchors live outside it
    cfg = root / "configs" / "lane.yaml"
    cfg.write_text(cfg.read_text() + f"signing:\n  trusted_keys: [{other.keyid}]\n")
    assert "not a trusted key" in (ledger.verify(root).problem or "")
    # in the trusted-keys file outside the workspace it is trusted (how a rotated or remote key is accepted)
    trusted = tmp_path / "trusted-keys"
    trusted.write_text(f"# a reviewer's machine\n{other.keyid}\n")
    monkeypatch.setenv("LANE_TRUSTED_KEYS", str(trusted))
    assert ledger.verify(root).ok, ledger.verify(root).problems


def test_entries_are_signed_by_the_local_key(completed_run: tuple[Path, Any]) -> None:
    from lane.core.signing import load_signer

    root, _ = completed_run
    keyid = load_signer(root, create=False).keyid
    assert {e["signature"]["keyid"] for e in ledger.read_entries(root)} == {keyid}
    head = json.loads((root / "reports" / "ledger.head.json").read_text())
    assert head["signature"]["keyid"] == keyid
