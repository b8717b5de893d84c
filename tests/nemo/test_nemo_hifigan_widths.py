"""The lighter HiFi-GAN generators offered for production (configs/nemo/hifigan_v2.yaml, hifigan_v3.yaml,
picked by a profile's train.vocoder.hifigan.config, e.g. configs/profiles/production_fast.yaml) go
through the lane's own export into a bundle that OnnxVoice synthesizes: one audio sample per
hop of every mel frame, so validate measures them like v1. Untrained generators (the architecture
is what is tested); the tiny FastPitch of the session supplies the mels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nemo_runs import REPO, tiny_profile

from lane.core.stage import StageRun


def _generator_nemo(config: Path, out: Path) -> tuple[Path, int]:
    from nemo.collections.tts.models import HifiGanModel
    from omegaconf import OmegaConf, open_dict

    cfg = OmegaConf.load(config)
    with open_dict(cfg):
        for k in ("train_ds", "validation_ds"):
            cfg.model[k].defer_setup = True
        cfg.model.max_steps = 1
    model = HifiGanModel(cfg=OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))["model"])
    params = sum(p.numel() for p in model.generator.parameters())
    model.mpd = None  # the generator is what ships; export restores with strict=False
    model.msd = None
    model.save_to(str(out))
    return out, params


@pytest.mark.parametrize(("width", "params_m"), [("v2", 0.93), ("v3", 1.46)])
def test_lighter_generators_export_into_a_bundle_that_speaks(trained: dict[str, Any], width: str,
                                                             params_m: float, tmp_path: Path) -> None:
    from lane.bundle import build_bundle, validate_voice_bundle
    from lane.bundle.voice import OnnxVoice

    root = trained["root"]
    voc, params = _generator_nemo(REPO / "configs" / "nemo" / f"hifigan_{width}.yaml", tmp_path / "hifigan.nemo")
    assert abs(params / 1e6 - params_m) < 0.05, params
    run_id = f"width-{width}"
    st = StageRun.open("train", root=root, run_id=run_id)
    outputs = json.loads((root / "runs" / "nemo-train" / "train" / "outputs.json").read_text())
    outputs["vocoder"], outputs["vocoder_params"] = str(voc), {}
    (st.stage_dir / "outputs.json").write_text(json.dumps(outputs))
    est = StageRun.open("export", root=root, run_id=run_id)
    prof = tiny_profile()
    prof["train"]["vocoder"] = {"type": "hifigan", "hifigan": {"config": f"configs/nemo/hifigan_{width}.yaml"}}
    bundle = build_bundle(est, prof, run_dir=est.run_dir, root=root, voice_profile_id=f"tiny_{width}")
    assert validate_voice_bundle(bundle).ok
    assert {c.id: c.ok for c in est.checks}["vocoder_onnx_matches_pytorch"]
    voice = OnnxVoice(bundle, threads=2, spin=False)
    audio = voice.synthesize("Hello there.")
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    assert len(audio) == voice.mel("Hello there.").shape[1] * 256


def test_a_base_of_another_width_is_refused(tmp_path: Path) -> None:
    """init: base with a v1 base while the profile picked v2 would silently train v1: the architecture
    check (lane.nemo.hifigan.generator_differences, applied before restoring a base) catches it."""
    from lane.nemo.hifigan import generator_differences, hifigan_config

    manifest = tmp_path / "m.json"
    manifest.write_text("")
    cfgs = {w: hifigan_config({"vocoder": {"hifigan": {"config": f"configs/nemo/{name}", "max_steps": 1}}}, REPO,
                              22050, manifest, manifest) for w, name in
            (("v1", "hifigan.yaml"), ("v2", "hifigan_v2.yaml"), ("v3", "hifigan_v3.yaml"))}
    assert generator_differences(cfgs["v1"], cfgs["v1"]) == []
    assert generator_differences(cfgs["v1"], cfgs["v2"]) == ["upsample_initial_channel"]
    assert set(generator_differences(cfgs["v1"], cfgs["v3"])) == {
        "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock", "resblock_kernel_sizes",
        "resblock_dilation_sizes"}
