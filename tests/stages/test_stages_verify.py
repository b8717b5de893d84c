"""The verify stage: its notebook executed by papermill with a real kernel on espeak-made speech, the
same notebook through `lane run`, the runs that start and then stop at verify (non-commercial weights,
NeMo missing, an experimental lane: each with a NO-GO report), and the preflight checks in-process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from lane.core.reasons import LaneError, exit_code
from lane.core.stage import StageRun
from lane.stages.verify import run_preflight

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "verify.ipynb"
INJECTED = ("root", "run_id", "run_dir", "stage", "resume", "lane", "profile", "audio", "transcript", "input_format",
            "expected_head", "voice_profile_id", "weights_manifest", "allow_from_scratch", "require_clean_tree",
            "cell_timeout_s", "stages", "backend", "kernel_name")
# A finder that makes `import nemo` fail, as if NeMo were not installed (without uninstalling it).
NO_NEMO = textwrap.dedent('''
    import sys
    class _NoNemo:
        def find_spec(self, name, path=None, target=None):
            if name == "nemo" or name.startswith("nemo."):
                raise ImportError(f"No module named {name!r} (hidden by the test)")
            return None
    sys.meta_path.insert(0, _NoNemo())
    for _m in [m for m in sys.modules if m == "nemo" or m.startswith("nemo.")]:
        del sys.modules[_m]
''')


def _run_id(done: Any) -> str:
    return done.last_status.split("run_id=")[1].split()[0]


def _result(root: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / "runs" / run_id / "verify" / "result.json").read_text())
    return data


def _report(root: Path, run_id: str) -> str:
    return (root / "reports" / f"readiness-{run_id}.md").read_text()


def test_notebook_is_committed_clean_with_a_parameters_cell() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    ns: dict[str, Any] = {}
    exec(params[0].source, ns)  # plain assignments only
    assert set(INJECTED) <= set(ns) and ns["root"] == ".." and ns["stage"] == "verify"


def test_notebook_under_papermill(ws: Path) -> None:
    import papermill as pm

    out = ws / "out.ipynb"
    pm.execute_notebook(str(ws / "notebooks" / "verify.ipynb"), str(out), cwd=str(ws / "notebooks"), progress_bar=False,
                        parameters={"root": str(ws), "run_id": "nb1", "audio": "data/speech.wav", "transcript": None},
                        kernel_name="python3")
    res = _result(ws, "nb1")
    assert res["status"] == "done" and res["reason"] == "ok"
    checks = {c["id"]: c for c in res["checks"]}
    for cid in ("config_valid", "head", "audio_present", "weights_manifest_ok", "weights_license_commercial",
                "base_weights", "runtime_nemo", "runtime_torch", "resources_disk", "resources_mem"):
        assert checks[cid]["ok"] is True, checks[cid]
    stats = res["stats"]
    assert stats["audio_sample_rates"] == "22050" and stats["audio_channels"] == "1" and stats["audio_files"] == 1
    assert 2.0 < stats["audio_total_s"] < 10.0
    assert stats["promotable"] is False and stats["not_promotable_reason"] == "lane_not_promotable"  # demo profile
    assert stats["device"] in ("cpu",) or stats["device"].startswith("cuda")
    executed = out.read_text()
    assert "weights_license_commercial" in executed and "silero_vad" in executed  # tables were displayed


def test_lane_run_passes_verify(ws: Path, lane_cli: Callable[..., Any]) -> None:
    done = lane_cli(ws, "run", "--stages", "verify", "--audio", "data/speech.wav", "--transcript", "")
    assert done.rc == 0, done.out[-3000:] + done.err[-3000:]
    assert done.last_status.startswith("[tts-prod] status=completed reason=ok")
    run_id = _run_id(done)
    assert _result(ws, run_id)["status"] == "done"
    assert "PROGRESS stage=verify" in done.out and "STATS stage=verify" in done.out
    assert done.train_status()["status"] == "completed"
    assert "NO-GO" in _report(ws, run_id)  # the demo profile is never promotable
    html = (ws / "reports" / f"readiness-{run_id}.html").read_text()
    assert "resemblyzer_voice_encoder" in html and "Apache-2.0" in html  # the licence table reaches the report
    assert "speech.wav" in (ws / "runs" / run_id / "verify" / "media" / "audio_inputs.md").read_text()


def test_non_commercial_weights_stop_the_run_no_go(ws: Path, lane_cli: Callable[..., Any]) -> None:
    """A permissive code licence with a CC-BY-NC weights licence: the run stops at verify, NO-GO."""
    m = json.loads((ws / "configs" / "voice" / "weights-manifest.example.json").read_text())
    vad = next(e for e in m["entries"] if e["id"] == "silero_vad")
    vad["weights_license"] = "CC-BY-NC-4.0"
    assert vad["code_license"] == "MIT"
    (ws / "nc.json").write_text(json.dumps(m))
    done = lane_cli(ws, "run", "--stages", "verify,train", "--audio", "data/speech.wav", "--transcript", "",
                    "--weights-manifest", "nc.json")
    assert done.rc == exit_code("weights_license_blocked") != 0
    assert "reason=weights_license_blocked" in done.last_status
    run_id = _run_id(done)
    res = _result(ws, run_id)
    assert res["reason"] == "weights_license_blocked"
    checks = {c["id"]: c for c in res["checks"]}
    assert checks["weights_license_commercial"]["ok"] is False and checks["weights_manifest_ok"]["ok"] is True
    assert "silero_vad" in checks["weights_license_commercial"]["detail"]
    st = done.train_status()
    assert st["reason"] == "weights_license_blocked" and st["exit_code"] == done.rc
    assert not (ws / "runs" / run_id / "train").exists()  # train never started
    report = _report(ws, run_id)
    assert "NO-GO" in report and "weights_license_blocked" in report


def test_nemo_missing_in_preflight_subprocess(ws: Path) -> None:
    """NeMo hidden by a sys.meta_path finder in a fresh interpreter: the runtime check blocks."""
    code = NO_NEMO + textwrap.dedent(f'''
        from lane.core.stage import StageRun
        from lane.stages.verify import run_preflight
        from lane.core.reasons import LaneError
        st = StageRun.open("verify", root={str(ws)!r}, run_id="nonemo")
        try:
            with st.guard():
                run_preflight(st, root={str(ws)!r}, lane="tts_prod_train_nemo", profile="demo",
                              audio="data/speech.wav", weights_manifest="configs/voice/weights-manifest.example.json")
        except LaneError as err:
            print("CODE", err.code)
    ''')
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ws, timeout=120)
    assert "CODE nemo_runtime_unavailable" in p.stdout, p.stdout + p.stderr
    res = _result(ws, "nonemo")
    assert res["status"] == "blocked" and res["reason"] == "nemo_runtime_unavailable"
    checks = {c["id"]: c for c in res["checks"]}
    assert checks["runtime_nemo"]["ok"] is False and "hidden by the test" in checks["runtime_nemo"]["detail"]
    assert checks["audio_present"]["ok"] is True  # the other checks still ran and were recorded


def test_nemo_missing_through_lane_run(ws: Path, lane_cli: Callable[..., Any], tmp_path: Path) -> None:
    """The same finder installed in every Python the run starts (a sitecustomize on PYTHONPATH), so
    the verify kernel itself cannot import NeMo: blocked, exit 2, train_status and a NO-GO report."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_NEMO)
    done = lane_cli(ws, "run", "--audio", "data/speech.wav", "--transcript", "", env={"PYTHONPATH": str(hook)})
    assert done.rc == 2 and done.last_status.startswith("[tts-prod] status=blocked reason=nemo_runtime_unavailable")
    run_id = _run_id(done)
    assert done.train_status()["reason"] == "nemo_runtime_unavailable"
    assert "NO-GO" in _report(ws, run_id)


def test_experimental_lane_is_never_promotable(ws: Path, lane_cli: Callable[..., Any]) -> None:
    done = lane_cli(ws, "run", "--lane", "audiocraft_experimental", "--audio", "data/speech.wav", "--transcript", "")
    assert done.rc == 0, done.out[-2000:]
    run_id = _run_id(done)
    res = _result(ws, run_id)
    assert res["stats"]["promotable"] is False and res["stats"]["not_promotable_reason"] == "experimental_lane"
    assert not (ws / "runs" / run_id / "train").exists()  # the lane declares verify only
    assert done.train_status("audiocraft_experimental")["run_id"] == run_id
    report = _report(ws, run_id)
    assert "NO-GO" in report and "experimental_lane" in report


# ------------------------------------------------------------------------------ in-process preflight
def _preflight(ws: Path, run_id: str, **kw: Any) -> tuple[StageRun, Any]:
    st = StageRun.open("verify", root=ws, run_id=run_id)
    args = {"root": ws, "lane": "tts_prod_train_nemo", "profile": "demo", "audio": "data/speech.wav",
            "weights_manifest": "configs/voice/weights-manifest.example.json", "raise_first": False}
    args.update(kw)
    return st, run_preflight(st, **args)


def _consent(ws: Path, use: str = "commercial") -> Path:
    """A consent record beside data/speech.wav that covers it (found by the <name>.consent.json rule)."""
    from lane.core.fsutil import sha256_file

    record = ws / "data" / "speech.consent.json"
    record.write_text(json.dumps({"schema": "voice_consent/1", "speaker": {"name": "espeak en-us"},
                                  "recorded_by": "tests", "permitted_use": use, "date": "2026-11-30",
                                  "recordings": [{"path": "data/speech.wav",
                                                  "sha256": sha256_file(ws / "data" / "speech.wav")}]}))
    return record


def test_production_without_base_weights_blocks(ws: Path) -> None:
    _consent(ws)
    st, pf = _preflight(ws, "prod", profile="production")
    assert [e.code for e in pf.errors if not e.code.startswith("consent")] == ["base_weights_missing"]  # consent: tests/consent
    assert {c.id: c.ok for c in st.checks}["base_weights"] is False
    _st2, pf2 = _preflight(ws, "prod2", profile="production", allow_from_scratch=True)
    assert pf2.errors == [] and not pf2.promotable and pf2.not_promotable_reason == "lane_not_promotable"


def test_insufficient_resources(ws: Path) -> None:
    (ws / "configs" / "profiles" / "huge.yaml").write_text(yaml.safe_dump(
        {"extends": "demo", "resources": {"min_free_disk_gb": 10**7, "min_free_mem_gb": 10**7}}))
    _st, pf = _preflight(ws, "huge", profile="huge")
    assert [e.code for e in pf.errors] == ["insufficient_resources", "insufficient_resources"]
    with pytest.raises(LaneError) as info:
        _preflight(ws, "huge2", profile="huge", raise_first=True)
    assert info.value.code == "insufficient_resources"


def test_first_failure_wins_but_all_checks_are_recorded(ws: Path) -> None:
    (ws / "data" / "bad.flac").write_text("text, not audio")
    st, pf = _preflight(ws, "multi", audio="data/bad.flac", lane="nope", expected_head="0" * 40)
    codes = [e.code for e in pf.errors]
    assert codes[:3] == ["unknown_lane", "deterministic_head_mismatch", "missing_audio_path"]
    recorded = {c.id for c in st.checks}
    assert {"config_valid", "head", "audio_present", "weights_manifest_ok", "runtime_torch", "resources_disk"} <= recorded


def test_consent_is_checked_and_certified(ws: Path) -> None:
    """Production: no consent, a research-only record, and even a covering commercial self-asserted
    record are consent_missing, with what to do instead (a spoken consent: tests/consent). The demo
    profile does not require one, but certifies the record it finds; a broken record fails anywhere."""
    _st, pf = _preflight(ws, "c0", profile="production", allow_from_scratch=False)
    assert "consent_missing" in [e.code for e in pf.errors]
    _consent(ws, use="research")
    _st1, pf1 = _preflight(ws, "c1", profile="production")
    assert "consent_missing" in [e.code for e in pf1.errors]
    record = _consent(ws)
    st2, pf2 = _preflight(ws, "c2", profile="production")
    detail = {c.id: c.detail for c in st2.checks}["consent"]
    assert "consent_missing" in [e.code for e in pf2.errors] and "self-asserted" in detail
    assert "lane consent challenge" in detail and "lane consent record" in detail
    st3, pf3 = _preflight(ws, "c3", profile="demo")
    assert pf3.errors == [] and "not required" in {c.id: c.detail for c in st3.checks}["consent"]
    assert [a["path"] for a in st3.artifacts if a["kind"] == "consent_record"] == ["data/speech.consent.json"]
    record.write_text("{not json")
    _st4, pf4 = _preflight(ws, "c4", profile="demo")
    assert [e.code for e in pf4.errors] == ["consent_invalid"]  # a broken record fails even where optional
    record.unlink()
    st5, pf5 = _preflight(ws, "c5", profile="demo")
    assert pf5.errors == [] and "not required" in {c.id: c.detail for c in st5.checks}["consent"]


@pytest.mark.parametrize(("kind", "code", "check"), [
    ("not_json", "weights_manifest_invalid", "weights_manifest_ok"),
    ("lacks_fields", "weights_manifest_invalid", "weights_manifest_ok"),
    ("missing_file", "weights_file_missing", "weights_manifest_ok"),
    ("wrong_sha", "weights_hash_mismatch", "weights_manifest_ok"),
    ("nc", "weights_license_blocked", "weights_license_commercial"),
    ("nc_in_expression", "weights_license_blocked", "weights_license_commercial"),
    ("unknown", "weights_license_blocked", "weights_license_commercial"),
    ("empty", "weights_license_blocked", "weights_license_commercial"),
])
def test_bad_manifests_in_the_verify_stage(ws: Path, kind: str, code: str, check: str) -> None:
    m = json.loads((ws / "configs" / "voice" / "weights-manifest.example.json").read_text())
    e = m["entries"][0]
    text = None
    if kind == "not_json":
        text = "{ nope"
    elif kind == "lacks_fields":
        del e["weights_license"]
    elif kind == "missing_file":
        e["path"] = "models/missing.onnx"
    elif kind == "wrong_sha":
        e["sha256"] = "f" * 64
    else:
        e["weights_license"] = {"nc": "CC-BY-NC-4.0", "nc_in_expression": "CC-BY-NC-4.0 AND (MIT OR Apache-2.0)",
                                "unknown": "unknown", "empty": ""}[kind]
    (ws / "bad.json").write_text(text if text is not None else json.dumps(m))
    st, pf = _preflight(ws, f"bad-{kind}", weights_manifest="bad.json")
    assert pf.errors and pf.errors[0].code == code
    assert {c.id: c.ok for c in st.checks}[check] is False


def test_a_python_without_tar_filters_blocks_nemo_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """NeMo 3.0 opens .nemo archives with PEP 706's `filter="data"`; Debian 12's python3.11 (3.11.2) has
    no such filters, and a base then failed deep in training as base_checkpoint_incompatible (seen in the
    debootstrapped container). Here the missing filters are simulated by hiding `tarfile.data_filter`
    (this Python has them); the verify check must name the cause."""
    import tarfile

    from lane.core.reasons import LaneError
    from lane.stages.checks import nemo_version, tar_filters_missing

    assert tar_filters_missing() is None
    monkeypatch.delattr(tarfile, "data_filter")
    why = tar_filters_missing()
    assert why and "PEP 706" in why and "3.11.4" in why
    with pytest.raises(LaneError) as err:
        nemo_version()
    assert err.value.code == "nemo_runtime_unavailable" and err.value.detail == why
