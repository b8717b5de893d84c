"""voice_bundle/1 export from the tiny trained FastPitch: ONNX vs PyTorch, validation, tampering,
atomic replacement, validation records, and ONNX synthesis without torch/NeMo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lane.bundle import build_bundle, require_valid, validate_voice_bundle, write_validation
from lane.core.reasons import LaneError
from lane.core.stage import StageRun


def _copy(bundle: dict[str, Any], tmp_path: Path) -> Path:
    dst = tmp_path / "voice_bundle"
    shutil.copytree(bundle["path"], dst)
    return dst


def test_bundle_is_complete_and_validates(bundle: dict[str, Any]) -> None:
    path = bundle["path"]  # a candidate: bundles/<voice>/candidates/<run_id>/, never the live voice
    assert (path.name, path.parent.name, path.parent.parent.name) == ("nemo-train", "candidates", "tiny")
    assert not (path.parent.parent / "voice_bundle").exists()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["bundle_version"] == "voice_bundle/1"
    assert set(manifest["files"]) == {"fastpitch.onnx", "fastpitch.nemo", "tokenizer.json", "MODEL_CARD.md"}
    assert manifest["models"]["vocoder"] == {"type": "griffin_lim", "params": {"n_iter": 8, "power": 1.2}}
    assert manifest["validation"] is None and manifest["run_id"] == "nemo-train"
    assert manifest["training"] == {"steps": 4, "promotable": False, "profile": "demo"}
    assert validate_voice_bundle(path).ok
    checks = {c["id"]: c for c in bundle["stage_result"]["checks"]}
    assert checks["bundle_validated"]["ok"] is True
    assert checks["onnx_matches_pytorch"]["ok"] is True
    assert checks["onnx_matches_pytorch"]["value"] <= checks["onnx_matches_pytorch"]["threshold"] == 1e-3
    kinds = [a["kind"] for a in bundle["stage_result"]["artifacts"]]
    assert "voice_bundle_manifest" in kinds
    card = (path / "MODEL_CARD.md").read_text()
    assert "nemo-train" in card and "from scratch" in card and manifest["dataset"]["sha256"] in card
    assert not list(path.parent.glob(".build-*"))  # no temp dirs left


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "remove", "extra_file", "bad_manifest"])
def test_tampered_bundle_fails_validation(bundle: dict[str, Any], tmp_path: Path, damage: str) -> None:
    path = _copy(bundle, tmp_path)
    onnx = path / "fastpitch.onnx"
    if damage == "flip_byte":
        data = bytearray(onnx.read_bytes())
        data[len(data) // 2] ^= 0xFF
        onnx.write_bytes(bytes(data))
    elif damage == "truncate":
        onnx.write_bytes(onnx.read_bytes()[:-10])
    elif damage == "remove":
        (path / "tokenizer.json").unlink()
    elif damage == "extra_file":
        (path / "notes.txt").write_text("hand edit")
    else:
        m = json.loads((path / "manifest.json").read_text())
        m["bundle_version"] = "voice_bundle/0"
        (path / "manifest.json").write_text(json.dumps(m))
    check = validate_voice_bundle(path)
    assert not check.ok and check.problems
    with pytest.raises(LaneError) as exc:
        require_valid(path)
    assert exc.value.code == "bundle_invalid"


def test_write_validation_keeps_hashes_valid(bundle: dict[str, Any], tmp_path: Path) -> None:
    path = _copy(bundle, tmp_path)
    before = json.loads((path / "manifest.json").read_text())["files"]
    write_validation(path, {"ok": True, "run_id": "r-val", "checks": [{"id": "cer_ratio", "ok": True}]})
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["files"] == before
    assert manifest["validation"]["path"] == "validation.json" and manifest["validation"]["ok"] is True
    assert validate_voice_bundle(path).ok
    (path / "validation.json").write_text('{"ok": true, "forged": 1}')
    check = validate_voice_bundle(path)
    assert not check.ok and "validation.json" in check.problems[0]


def test_failed_rebuild_keeps_the_old_bundle(bundle: dict[str, Any], trained: dict[str, Any]) -> None:
    """An impossible ONNX tolerance makes the new build fail after its ONNX export: the old bundle
    stays byte-identical and valid, and no temp directory is left behind."""
    path = bundle["path"]
    old = (path / "manifest.json").read_bytes()
    prof = {**trained["profile"], "export": {"onnx_tolerance": -1.0}}
    st = StageRun.open("export", root=trained["root"], run_id="rebuild-bad")
    with pytest.raises(LaneError) as exc:
        build_bundle(st, prof, run_dir=trained["root"] / "runs" / "nemo-train", root=trained["root"],
                     voice_profile_id="tiny")
    assert exc.value.code == "onnx_mismatch"
    assert (path / "manifest.json").read_bytes() == old and validate_voice_bundle(path).ok
    assert not list(path.parent.glob(".build-*")) and not (path.parent / "rebuild-bad").exists()


def test_rebuild_replaces_atomically(trained: dict[str, Any], tmp_path: Path) -> None:
    root = trained["root"]
    run_dir = root / "runs" / "nemo-train"
    first = build_bundle(StageRun.open("export", root=root, run_id="b1"), trained["profile"], run_dir=run_dir,
                         root=root, voice_profile_id="twice")
    m1 = json.loads((first / "manifest.json").read_text())
    again = build_bundle(StageRun.open("export", root=root, run_id="b1"), trained["profile"], run_dir=run_dir,
                         root=root, voice_profile_id="twice")  # a re-export of the same run replaces its candidate
    m2 = json.loads((again / "manifest.json").read_text())
    assert first == again and m1["run_id"] == m2["run_id"] == "b1"
    assert m1["files"]["fastpitch.nemo"] == m2["files"]["fastpitch.nemo"]
    other = build_bundle(StageRun.open("export", root=root, run_id="b2"), trained["profile"], run_dir=run_dir,
                         root=root, voice_profile_id="twice")  # another run never touches it
    assert other != first and validate_voice_bundle(first).ok and validate_voice_bundle(other).ok
    assert not list(first.parent.glob(".build-*")) and not list(first.parent.glob(".*.old"))


def test_export_without_train_outputs_fails(tmp_path: Path) -> None:
    st = StageRun.open("export", root=tmp_path, run_id="empty")
    with pytest.raises(LaneError) as exc:
        build_bundle(st, {}, run_dir=st.run_dir, root=tmp_path, voice_profile_id="x")
    assert exc.value.code == "export_failed"


def test_onnx_voice_matches_nemo_and_synthesizes(bundle: dict[str, Any]) -> None:
    from lane.bundle.manifest import BundleManifest
    from lane.bundle.voice import OnnxVoice
    from lane.nemo.synth import nemo_mels, nemo_synthesize

    voice = OnnxVoice(bundle["path"])
    texts = ["Hello there, how are you?", "A stitch in time saves nine."]
    onnx_mels = [voice.mel(t) for t in texts]
    ref = nemo_mels(BundleManifest.load(bundle["path"]).nemo_source(), texts)
    for a, b in zip(onnx_mels, ref, strict=True):
        assert a.shape == b.shape and a.shape[0] == 80
        assert float(np.max(np.abs(a - b))) < 1e-3
    exact = voice.mel_batch(texts)  # default: one call per text, identical to mel()
    assert all(np.array_equal(a, b) for a, b in zip(exact, onnx_mels, strict=True))
    padded = voice.mel_batch(texts, padded=True)  # one padded call: frame counts within a few frames
    assert all(abs(a.shape[1] - b.shape[1]) <= max(2, b.shape[1] // 20) for a, b in zip(padded, onnx_mels, strict=True))
    audio = voice.synthesize(texts[0])
    hop = voice.audio["hop_length"]
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()
    assert abs(len(audio) - onnx_mels[0].shape[1] * hop) <= hop
    assert float(np.abs(audio).max()) > 0.1
    ref_audio = nemo_synthesize(BundleManifest.load(bundle["path"]).nemo_source(), texts[:1])[0]
    assert len(ref_audio) == len(audio)
    with pytest.raises(LaneError) as exc:
        voice.synthesize("   ")
    assert exc.value.code == "synthesis_failed"


def test_tokenizer_replay_equals_nemo(bundle: dict[str, Any]) -> None:
    from nemo.collections.tts.models import FastPitchModel

    from lane.nemo.tokenizer import nemo_encode
    from lane.text.tokenizers import load_tokenizer_file

    model = FastPitchModel.restore_from(str(bundle["path"] / "fastpitch.nemo"), map_location="cpu")
    tok = load_tokenizer_file(bundle["path"] / "tokenizer.json")
    for text in ["Hello, World!", "  double  spaces  ", "Café naïve “quotes” — dash", "It's 12 o'clock?",
                 "ÀÉÎÕÜ ß ø", "tabs\tand\nnewlines", "semi;colon: (paren) [bracket]", "", "!!!"]:
        assert tok.encode(text) == nemo_encode(model.vocab, text), text


def test_onnx_voice_imports_no_torch_or_nemo(bundle: dict[str, Any], repo_root: Path) -> None:
    code = ("import sys; from lane.bundle.voice import OnnxVoice; v = OnnxVoice(sys.argv[1]); "
            "a = v.synthesize_batch(['one two three', 'four']); "
            "bad = [m for m in ('torch', 'nemo', 'lightning') if m in sys.modules]; "
            "print('LEN', len(a), a[0].shape[0] > 0, 'BAD', bad)")
    out = subprocess.run([sys.executable, "-c", code, str(bundle["path"])], cwd=repo_root, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(repo_root)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LEN 2 True BAD []" in out.stdout


def test_export_notebook_runs_under_papermill(trained: dict[str, Any], tmp_path: Path) -> None:
    """notebooks/export.ipynb executed by papermill with a real kernel against the trained run."""
    import papermill as pm

    from lane.core.config import Settings
    from lane.runner import choose_kernel

    root = trained["root"]
    repo = Path(__file__).resolve().parents[2]
    out_nb = tmp_path / "export.out.ipynb"
    pm.execute_notebook(str(repo / "notebooks" / "export.ipynb"), str(out_nb), kernel_name=choose_kernel(Settings(), root),
                        parameters={"root": str(root), "run_id": "nemo-train", "run_dir": str(root / "runs" / "nemo-train"),
                                    "profile": "demo", "voice_profile_id": "nb_voice"},
                        cwd=str(repo / "notebooks"), progress_bar=False)
    res = json.loads((root / "runs" / "nemo-train" / "export" / "result.json").read_text())
    assert res["status"] == "done" and res["reason"] == "ok"
    assert {c["id"] for c in res["checks"]} >= {"bundle_validated", "onnx_matches_pytorch"}
    assert validate_voice_bundle(root / "bundles" / "nb_voice" / "candidates" / "nemo-train").ok
