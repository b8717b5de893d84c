"""Training through lane.nemo.train_voice with real NeMo FastPitch on a tiny espeak-ng dataset."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nemo_runs import TINY_MODEL, make_root, tiny_profile, weights_manifest

from lane.core.reasons import LaneError
from lane.core.stage import StageRun

HERE = Path(__file__).parent


def test_demo_training_records_steps_stats_and_outputs(trained: dict[str, Any]) -> None:
    r, st = trained["result"], trained["st"]
    assert r.steps == 4 and r.vocoder == "griffin_lim" and r.promotable is False
    assert trained["stage_result"]["status"] == "done"
    assert st.stats_["fastpitch_steps"] == 4 and st.stats_["promotable"] is False
    for key in ("t_loss", "t_mel_loss", "t_dur_loss", "t_pitch_loss", "t_ctc_loss", "lr", "steps_per_s"):
        assert key in st.stats_, key
    rows = [json.loads(x) for x in Path(r.loss_log).read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert all(row["loss"] > 0 for row in rows)
    outputs = json.loads((st.stage_dir / "outputs.json").read_text())
    assert outputs["fastpitch_nemo"] == r.fastpitch_nemo and outputs["tokenizer"]["type"] == "chars"
    assert outputs["dataset"]["sha256"] and len(outputs["dataset"]["sha256"]) == 64
    media = json.loads((st.stage_dir / "media" / "training.json").read_text())
    assert media[0]["path"] == "media/loss.png" and (st.stage_dir / "media" / "loss.png").stat().st_size > 1000
    assert (Path(r.fastpitch_nemo).parent / "checkpoints" / "fastpitch" / "last.ckpt").exists()
    assert list((Path(r.fastpitch_nemo).parent / "tensorboard").rglob("events.out.tfevents*"))


def test_saved_model_restores_and_finetunes_from_it(trained: dict[str, Any], tiny_ds: Any,
                                                    tmp_path: Path) -> None:
    """Production code path: base_spectrogram from a weights manifest (the .nemo the demo run saved).
    With lr 0 the fine-tuned weights must equal the base's exactly, which proves they were loaded."""
    import torch
    from nemo.collections.tts.models import FastPitchModel

    from lane.nemo.train import train_voice

    base_path = Path(trained["result"].fastpitch_nemo)
    base = FastPitchModel.restore_from(str(base_path), map_location="cpu")
    root = make_root(tmp_path / "ws")
    wm = weights_manifest(root, {"base_spectrogram": base_path})
    prof = tiny_profile(2, init="base", promotable=True)
    prof["train"]["fastpitch"]["model"] = {**TINY_MODEL, "lr": 0.0}
    st = StageRun.open("train", root=root, run_id="ft")
    r = train_voice(st, prof, tiny_ds, out_dir=st.stage_dir / "model", weights_manifest=str(wm),
                    allow_from_scratch=False, resume=False)
    assert r.steps == 2 and r.promotable is False  # fine-tuned from its base: only Griffin-Lim stands in the way
    assert r.not_promotable_because == st.stats_["not_promotable_because"] == "the vocoder is Griffin-Lim"
    assert r.base_weights[0]["role"] == "base_spectrogram" and r.base_weights[0]["license"] == "Apache-2.0"
    tuned = FastPitchModel.restore_from(r.fastpitch_nemo, map_location="cpu")
    a, b = base.state_dict(), tuned.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_vocabulary_mismatch_is_base_checkpoint_incompatible(trained: dict[str, Any], tiny_ds: Any,
                                                              tmp_path: Path) -> None:
    from lane.nemo.train import train_voice

    root = make_root(tmp_path / "ws")
    cfg = root / "configs" / "nemo" / "fastpitch.yaml"
    text = cfg.read_text()
    assert "    punct: true\n" in text
    cfg.write_text(text.replace("    punct: true\n", "    punct: false\n"))  # a smaller vocabulary
    wm = weights_manifest(root, {"base_spectrogram": Path(trained["result"].fastpitch_nemo)})
    st = StageRun.open("train", root=root, run_id="mismatch")
    with pytest.raises(LaneError) as exc:
        train_voice(st, tiny_profile(1, init="base"), tiny_ds, out_dir=st.stage_dir / "model",
                    weights_manifest=str(wm), allow_from_scratch=False, resume=False)
    assert exc.value.code == "base_checkpoint_incompatible"
    assert "vocabulary mismatch" in exc.value.detail and "tokenizer: checkpoint" in exc.value.detail


def test_architecture_mismatch_is_base_checkpoint_incompatible(trained: dict[str, Any], tiny_ds: Any,
                                                               tmp_path: Path) -> None:
    """A file that is not a FastPitch .nemo at all gives the same clear reason, not a traceback."""
    from lane.nemo.train import train_voice

    root = make_root(tmp_path / "ws")
    bogus = root / "not_fastpitch.nemo"
    bogus.write_bytes(b"this is not a tar archive")
    wm = weights_manifest(root, {"base_spectrogram": bogus})
    st = StageRun.open("train", root=root, run_id="bogus")
    with pytest.raises(LaneError) as exc:
        train_voice(st, tiny_profile(1, init="base"), tiny_ds, out_dir=st.stage_dir / "model",
                    weights_manifest=str(wm), allow_from_scratch=False, resume=False)
    assert exc.value.code == "base_checkpoint_incompatible"


def test_production_without_base_weights(tiny_ds: Any, tmp_path: Path) -> None:
    from lane.nemo.train import train_voice

    root = make_root(tmp_path / "ws")
    st = StageRun.open("train", root=root, run_id="nobase")
    prof = tiny_profile(1, init="base", promotable=True)
    prof["train"]["fastpitch"]["base"] = "tts_en_fastpitch"  # production's: NGC's, not placed under models/base/
    with pytest.raises(LaneError) as exc:
        train_voice(st, prof, tiny_ds, out_dir=st.stage_dir / "model",
                    weights_manifest="configs/voice/weights-manifest.example.json", allow_from_scratch=False,
                    resume=False)
    assert exc.value.code == "base_weights_missing"
    # --allow-from-scratch trains, and the run is then not promotable
    r = train_voice(st, prof, tiny_ds, out_dir=st.stage_dir / "model",
                    weights_manifest="configs/voice/weights-manifest.example.json", allow_from_scratch=True,
                    resume=False)
    assert r.promotable is False and st.stats_["promotable"] is False and r.base_weights == []


def test_nan_loss_is_training_diverged(tiny_ds: Any, tmp_path: Path) -> None:
    """pitch_std 0 makes the normalised pitch infinite, so the loss is NaN at the first step."""
    from lane.nemo.train import train_voice

    ds = copy.copy(tiny_ds)
    ds.pitch_stats = {**tiny_ds.pitch_stats, "pitch_std": 0.0}
    root = make_root(tmp_path / "ws")
    st = StageRun.open("train", root=root, run_id="nan")
    with pytest.raises(LaneError) as exc:
        train_voice(st, tiny_profile(3), ds, out_dir=st.stage_dir / "model", weights_manifest=None,
                    allow_from_scratch=False, resume=False)
    assert exc.value.code == "training_diverged"


def _ds_json(ds: Any, path: Path) -> Path:
    meta = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(ds).items()}
    path.mkdir(parents=True, exist_ok=True)
    (path / "ds.json").write_text(json.dumps(meta))
    return path


def _child(root: Path, data: Path, steps: int, resume: bool, block: bool = False) -> list[str]:
    return [sys.executable, str(HERE / "nemo_train_child.py"), str(root), str(data), str(steps),
            "1" if resume else "0", "1" if block else "0"]


def test_resume_after_kill_9(tiny_ds: Any, tmp_path: Path, repo_root: Path) -> None:
    """A real SIGKILL mid-training; the rerun with resume continues from the last step checkpoint."""
    root = make_root(tmp_path / "ws")
    data = _ds_json(tiny_ds, tmp_path / "ds")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(repo_root)}
    steps = 40
    ckpt_meta = root / "runs" / "resume-run" / "train" / "model" / "checkpoints" / "fastpitch" / "last.json"
    proc = subprocess.Popen(_child(root, data, steps, False), cwd=repo_root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt_meta.exists() and json.loads(ckpt_meta.read_text())["step"] >= 4:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "training ended before it could be killed:\n" + (proc.stdout.read() if proc.stdout else "")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    saved = json.loads(ckpt_meta.read_text())["step"]
    assert 4 <= saved < steps
    log = root / "runs" / "resume-run" / "train" / "model" / "loss_log.jsonl"
    done_before = [json.loads(x)["step"] for x in log.read_text().splitlines() if x.strip()]
    assert max(done_before) >= saved
    out = subprocess.run(_child(root, data, steps, True), cwd=repo_root, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("DONE")][-1]
    assert line == f"DONE steps={steps} start={saved}"
    assert "resuming FastPitch from" in out.stdout
    rows = [json.loads(x)["step"] for x in log.read_text().splitlines() if x.strip()]
    assert rows == list(range(1, steps + 1))  # steps after the checkpoint were redone once, none lost


def test_missing_nemo_is_nemo_runtime_unavailable(tiny_ds: Any, tmp_path: Path, repo_root: Path) -> None:
    """NeMo hidden by an import hook in a subprocess (not uninstalled): blocked, result written."""
    root = make_root(tmp_path / "ws")
    data = _ds_json(tiny_ds, tmp_path / "ds")
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    out = subprocess.run(_child(root, data, 1, False, block=True), cwd=repo_root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    assert "LANE_ERROR nemo_runtime_unavailable" in out.stdout
    res = json.loads((root / "runs" / "resume-run" / "train" / "result.json").read_text())
    assert res["status"] == "blocked" and res["reason"] == "nemo_runtime_unavailable"
