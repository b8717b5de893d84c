"""An untrained production-size voice bundle for the speed benchmarks (imported by bench_rtf_levers.py
and bench_serve.py): FastPitch 45.7 M (configs/nemo/fastpitch.yaml) + a HiFi-GAN generator of a given
width, saved as .nemo and exported by the lane's own `build_bundle` (ONNX, tokenizer, manifest, checks),
so the bench runs exactly what `lane serve` runs.

Untrained FastPitch predicts about 0 frames a token; its duration output layer is pinned so every
token lasts as long as in natural speech (`chars_per_s`): realistic mel lengths, the compute of a
trained model. Built once per workspace and width (`<workspace>/bundles/prod_<width>/candidates/bench`).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WIDTHS = {"v1": "hifigan.yaml", "v2": "hifigan_v2.yaml", "v3": "hifigan_v3.yaml"}


def untrained_fastpitch(chars_per_s: float = 14.0) -> Any:
    import torch
    from nemo.collections.tts.models import FastPitchModel
    from omegaconf import OmegaConf, open_dict

    fcfg = OmegaConf.load(REPO / "configs/nemo/fastpitch.yaml")
    with open_dict(fcfg):
        for k in ("train_ds", "validation_ds"):
            fcfg.model[k].defer_setup = True
    cfg = OmegaConf.create(OmegaConf.to_container(fcfg, resolve=True))["model"]
    fp = FastPitchModel(cfg=cfg).eval()
    frames_per_token = float(cfg.sample_rate) / float(cfg.n_window_stride) / chars_per_s
    with torch.no_grad():
        fc = fp.fastpitch.duration_predictor.fc
        fc.weight.zero_()
        fc.bias.fill_(math.log(1.0 + frames_per_token))
    return fp


def untrained_generator(width: str) -> Any:
    from nemo.collections.tts.models import HifiGanModel
    from omegaconf import OmegaConf, open_dict

    hcfg = OmegaConf.load(REPO / "configs/nemo" / WIDTHS[width])
    with open_dict(hcfg):
        for k in ("train_ds", "validation_ds"):
            hcfg.model[k].defer_setup = True
        hcfg.model.max_steps = 1
    cfg = OmegaConf.create(OmegaConf.to_container(hcfg, resolve=True))["model"]
    return HifiGanModel(cfg=cfg).eval()


def production_bundle(workspace: Path, width: str, chars_per_s: float = 14.0) -> Path:
    """bundles/prod_<width>/candidates/bench in `workspace`, built unless it is there already."""
    from lane.bundle import build_bundle
    from lane.core.config import load_profile
    from lane.core.stage import StageRun
    from lane.nemo.fastpitch import audio_settings
    from lane.nemo.runtime import import_nemo

    voice = f"prod_{width}"
    final = workspace / "bundles" / voice / "candidates" / "bench"
    if (final / "manifest.json").is_file():
        return final
    import_nemo()
    if not (workspace / "configs").exists():
        shutil.copytree(REPO / "configs", workspace / "configs")
    models = workspace / "models" / voice
    models.mkdir(parents=True, exist_ok=True)
    fp = untrained_fastpitch(chars_per_s)
    fp.save_to(str(models / "fastpitch.nemo"))
    untrained_generator(width).save_to(str(models / "hifigan.nemo"))
    train = StageRun.open("train", root=workspace, run_id="bench")
    outputs = {"fastpitch_nemo": str(models / "fastpitch.nemo"), "vocoder": str(models / "hifigan.nemo"),
               "vocoder_params": {}, "audio": audio_settings(fp.cfg), "run_id": "bench", "steps": 0,
               "promotable": False, "base_weights": [], "settings": {"note": f"untrained, {chars_per_s} chars/s"}}
    (train.stage_dir / "outputs.json").write_text(json.dumps(outputs), encoding="utf-8")
    prof = load_profile("production", workspace)
    st = StageRun.open("export", root=workspace, run_id="bench")
    path = build_bundle(st, prof, run_dir=st.run_dir, root=workspace, voice_profile_id=voice)
    st.finish()
    shutil.rmtree(models, ignore_errors=True)
    return path
