"""The README's demo command end to end, through the real CLI in a subprocess: `lane run` on the
embedded demo data with the four real notebooks under papermill (real kernel), real data preparation,
real NeMo FastPitch training, ONNX export, validation, ledger, report; then the bundle served over a
real HTTP server on loopback.

The one difference from `bash scripts/demo.sh` is a profile that extends `demo` and trains fewer
steps, because CI has two cores. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import wave
from io import BytesIO
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CI_PROFILE = """\
# The demo profile with fewer training steps (tests/test_e2e_lane.py).
extends: demo
train:
  checkpoint_every: 20
  select: {every: 20}
  fastpitch:
    max_steps: 40
"""


def _lane(root: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("TRAIN_BACKEND", "TRAIN_LANE", "AUDIO_PATH", "EXPECTED_HEAD", "VOICE_PROFILE_ID", "LANE_PROFILE",
                "LANE_CONFIG"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "lane", *args, "--root", str(root)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("e2e")
    for name in ("configs", "notebooks", "data/demo", "data/eval"):
        shutil.copytree(REPO / name, root / name)
    (root / "configs" / "profiles" / "ci_demo.yaml").write_text(CI_PROFILE, encoding="utf-8")
    proc = _lane(root, "run", "--profile", "ci_demo", "--voice-profile-id", "e2e_voice")
    return root, proc


def _candidate(root: Path, proc: subprocess.CompletedProcess[str]) -> Path:
    run_id = proc.stdout.split("run_id=")[-1].split()[0]
    return root / "bundles" / "e2e_voice" / "candidates" / run_id


def test_demo_lane_completes_every_stage(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, proc = demo_run
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("[tts-prod]")][-1]
    assert last.startswith("[tts-prod] status=completed reason=ok run_id="), last
    for kind in ("PROGRESS stage=train", "STATS stage=train", "ARTIFACT stage=export kind=voice_bundle_manifest"):
        assert kind in proc.stdout, kind

    status = json.loads((root / "artifacts" / "train_status.tts_prod_train_nemo.json").read_text())
    assert status["status"] == "completed" and status["reason"] == "ok"
    assert [s for s in ("verify", "train", "export", "validate") if status["stages"][s]["verdict"] != "PASS"] == []
    assert status["bundle_path"] and "e2e_voice" in status["bundle_path"]

    dataset = json.loads((root / "artifacts" / "dataset_manifest.tts_prod_train_nemo.json").read_text())
    kept = [c for c in dataset["clips"] if c.get("kept")]
    assert len(kept) >= 20, "the demo recording should yield most of its sentences as clips"
    log = (root / "artifacts" / "voice_train_prod.orchestrator.log").read_text()
    assert last in log


def test_demo_bundle_validates_and_report_is_no_go_only_for_promotability(
        demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    from lane.bundle import validate_voice_bundle

    root, proc = demo_run
    bundle = _candidate(root, proc)
    assert not (root / "bundles" / "e2e_voice" / "voice_bundle").exists(), "a NO-GO run never makes a live voice"
    check = validate_voice_bundle(bundle)
    assert check.ok, check.problems
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["bundle_version"] == "voice_bundle/1"
    assert manifest["validation"], "validate must record its metrics in the bundle"

    run_id = proc.stdout.split("run_id=")[-1].split()[0]
    report = (root / "reports" / f"readiness-{run_id}.md").read_text()
    assert report.startswith("# Verdict: NO-GO") and "Reason codes: `lane_not_promotable` (see" in report
    assert "The ci_demo profile is not promotable" in report
    assert "advisory (" in report  # the demo's quality metrics are advisory, never "pass"
    verify_bundle = _lane(root, "verify-bundle", str(bundle), timeout=120)
    assert verify_bundle.returncode == 0 and "verdict NO-GO" in verify_bundle.stdout, verify_bundle.stdout
    html = (root / "reports" / f"readiness-{run_id}.html").read_text()
    assert "<audio" in html and "data:image/png;base64," in html
    # the gated CER is free decoding, the grammar one is advisory, and every metric names its evaluator
    assert "(`cer_synth_jsgf`)" in report and "advisory (not gated)" in report
    assert "| pocketsphinx (pocketsphinx_en_us, sha256 52497f3603eb) |" in report
    assert "ge2e (resemblyzer_voice_encoder, sha256 39373b86598f)" in report
    metrics = json.loads((bundle / "validation.json").read_text())
    assert metrics["metrics"]["asr_mode"] == "free decoding"
    assert metrics["evaluators"]["asr"]["class"] == "pocketsphinx"
    assert metrics["metric_evaluators"]["cer_synth"]["id"] == "pocketsphinx_en_us"
    # training kept the best checkpoint by the held-out score (real scorer: steps 20 and 40) and the
    # report shows the curve
    select = json.loads((root / "runs" / run_id / "train" / "select.json").read_text())
    assert [h["step"] for h in select["history"]] == [20, 40]
    assert select["best_step"] in (20, 40) and all(0 <= h["cer"] <= 1.5 for h in select["history"])
    assert all(h["spk_sim"] is not None for h in select["history"])
    assert "## Checkpoint selection" in report and f"| {select['best_step']} |" in report
    assert 'id="selection"' in html and "Held-out score per step" in html

    verify = _lane(root, "ledger", "verify", timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_served_bundle_speaks_wav_over_loopback(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    from lane.core.reasons import LaneError
    from lane.serve import ServerThread, create_app, load_settings

    root, proc = demo_run
    token = "e2e-token-0123456789abcdef"
    cand = _candidate(root, proc)
    with pytest.raises(LaneError) as refused:  # the demo is NO-GO: never served as a voice ...
        create_app(load_settings(root, env={}, source=cand, port=0))
    assert refused.value.code == "bundle_not_promoted"
    settings = load_settings(root, env={"LANE_SERVE_TOKEN": token}, source=cand, port=0, allow_unpromoted=True)
    with ServerThread(create_app(settings), settings) as base:  # ... unless asked to
        health = json.loads(urllib.request.urlopen(f"{base}/healthz", timeout=30).read())
        assert health == {"status": "ok", "voice": "e2e_voice", "voices": ["e2e_voice"]}
        req = urllib.request.Request(f"{base}/api/voice/speak", data=json.dumps({"text": "Hello from the lane."}).encode(),
                                     headers={"Content-Type": "application/json"})
        resp = urllib.request.urlopen(req, timeout=120)
        assert resp.headers["Content-Type"] == "audio/wav" and resp.headers["X-Voice-Lane-Unpromoted"] == "true"
        with wave.open(BytesIO(resp.read())) as w:
            assert w.getnchannels() == 1 and w.getframerate() == 22050
            assert w.getnframes() / w.getframerate() > 0.3
        bad = urllib.request.Request(f"{base}/api/voice/speak", data=b'{"text": ""}',
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)
        assert err.value.code == 400 and json.loads(err.value.read())["error"] == "empty_text"
        status_req = urllib.request.Request(f"{base}/api/train/status?lane=tts_prod_train_nemo",
                                            headers={"Authorization": f"Bearer {token}"})
        status = json.loads(urllib.request.urlopen(status_req, timeout=30).read())
        assert status["status"] == "completed"


def test_tampering_with_the_shipped_bundle_is_caught(demo_run: tuple[Path, subprocess.CompletedProcess[str]],
                                                     tmp_path: Path) -> None:
    """Runs last in this module: it edits a copy, never the shared run."""
    from lane.bundle import validate_voice_bundle

    root, proc = demo_run
    copy = tmp_path / "ws"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("*.ipynb", "*.html"))
    onnx = next(_candidate(copy, proc).glob("*.onnx"))
    onnx.write_bytes(onnx.read_bytes()[:-16] + b"\0" * 16)
    assert not validate_voice_bundle(onnx.parent).ok
    verify = _lane(copy, "ledger", "verify", timeout=120)
    assert verify.returncode == 5, verify.stdout + verify.stderr
