"""A tiny HiFi-GAN (tiny generator; the discriminators are NeMo's fixed-size ones) trained two
batches on mels the tiny FastPitch generates with ground-truth alignment, then exported into a bundle
with its generator ONNX. Kept to two batches: the discriminators make every CPU step expensive."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from nemo_runs import TINY_HIFIGAN, tiny_profile

from lane.core.stage import StageRun


def test_tiny_hifigan_trains_and_exports(trained: dict[str, Any], tiny_ds: Any, tmp_path: Path) -> None:
    from nemo.collections.tts.models import FastPitchModel, HifiGanModel

    from lane.bundle import build_bundle, validate_voice_bundle
    from lane.bundle.manifest import BundleManifest
    from lane.bundle.voice import OnnxVoice
    from lane.nemo.fastpitch import train_settings
    from lane.nemo.hifigan import train_hifigan
    from lane.nemo.synth import nemo_synthesize

    root = trained["root"]
    prof = tiny_profile()
    prof["train"]["vocoder"] = {"type": "hifigan", "hifigan": {"init": "scratch", "max_steps": 2,
                                                               "model": dict(TINY_HIFIGAN)}}
    settings = train_settings(prof)
    fp = FastPitchModel.restore_from(trained["result"].fastpitch_nemo, map_location="cpu")
    st = StageRun.open("train", root=root, run_id="hifi")
    out_dir = st.stage_dir / "model"
    hifi_path = train_hifigan(st, settings, fp, fp.cfg, tiny_ds, out_dir=out_dir, base=None, resume=False)
    assert st.stats_["hifigan_steps"] == 2  # Lightning counted 4: two optimizers per batch
    mels = sorted((out_dir / "vocoder" / "train" / "mels").glob("*.npy"))
    rows = [json.loads(x) for x in (out_dir / "vocoder" / "train" / "vocoder_manifest.json").read_text().splitlines()]
    assert len(mels) == len(rows) == 6
    mel0 = np.load(mels[0])
    assert mel0.shape[0] == 80 and np.isfinite(mel0).all()
    log = [json.loads(x) for x in (out_dir / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["model"] == "hifigan"] == [1, 2]

    # export: reuse the demo run's outputs, with this vocoder
    outputs = json.loads((root / "runs" / "nemo-train" / "train" / "outputs.json").read_text())
    outputs["vocoder"], outputs["vocoder_params"] = str(hifi_path), {}
    (st.stage_dir / "outputs.json").write_text(json.dumps(outputs))
    est = StageRun.open("export", root=root, run_id="hifi")
    bundle = build_bundle(est, prof, run_dir=est.run_dir, root=root, voice_profile_id="tiny_hifigan")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["models"]["vocoder"]["type"] == "hifigan"
    assert {"vocoder.onnx", "hifigan.nemo"} <= set(manifest["files"])
    assert validate_voice_bundle(bundle).ok
    checks = {c.id: c for c in est.checks}
    assert checks["vocoder_onnx_matches_pytorch"].ok and checks["bundle_validated"].ok
    # the generator-only .nemo is much smaller than the full one and still restores (strict=False)
    assert (bundle / "hifigan.nemo").stat().st_size < hifi_path.stat().st_size / 10
    gen = HifiGanModel.restore_from(str(bundle / "hifigan.nemo"), map_location="cpu", strict=False)
    assert sum(p.numel() for p in gen.generator.parameters()) > 0
    voice = OnnxVoice(bundle)
    text = "Hello there."
    audio = voice.synthesize(text)
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert len(audio) == voice.mel(text).shape[1] * voice.audio["hop_length"]
    ref = nemo_synthesize(BundleManifest.load(bundle).nemo_source(), [text])[0]
    assert ref.shape == audio.shape and float(np.max(np.abs(ref - audio))) < 1e-3
    shutil.rmtree(out_dir / "vocoder", ignore_errors=True)
