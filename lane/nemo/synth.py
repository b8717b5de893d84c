"""Synthesis through NeMo/PyTorch from a bundle's .nemo files: the reference the ONNX path
(lane.bundle.voice.OnnxVoice) is compared against by the validate stage."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.reasons import LaneError
from ..text.normalize import normalize
from .runtime import import_nemo, quiet_nemo
from .tokenizer import nemo_encode


def _paths(source: str | os.PathLike[str] | dict[str, Any]) -> tuple[Path, Path | None, dict[str, Any], dict[str, Any]]:
    """(fastpitch.nemo, hifigan.nemo or None, vocoder spec, audio settings) from a bundle dir or a dict
    {"fastpitch": path, "vocoder": path | "griffin_lim", "audio": {...}, "vocoder_params": {...}}."""
    if isinstance(source, dict):
        voc = source.get("vocoder", "griffin_lim")
        spec = {"type": "griffin_lim", "params": source.get("vocoder_params") or {}} if voc == "griffin_lim" else \
            {"type": "hifigan"}
        return Path(source["fastpitch"]), None if voc == "griffin_lim" else Path(voc), spec, dict(source.get("audio") or {})
    bdir = Path(source)
    manifest = json.loads((bdir / "manifest.json").read_text(encoding="utf-8"))
    models = manifest["models"]
    if not models["spectrogram"].get("nemo"):
        raise LaneError("synthesis_failed", f"{bdir}: the bundle holds no FastPitch .nemo")
    voc = models["vocoder"]
    hifi = bdir / voc["nemo"] if voc["type"] == "hifigan" and voc.get("nemo") else None
    if voc["type"] == "hifigan" and hifi is None:
        raise LaneError("synthesis_failed", f"{bdir}: the bundle holds no HiFi-GAN .nemo")
    return bdir / models["spectrogram"]["nemo"], hifi, voc, dict(manifest.get("audio") or {})


def nemo_mels(source: str | os.PathLike[str] | dict[str, Any], texts: Sequence[str]) -> list[Any]:
    """Log-mels (n_mels, frames) from the FastPitch .nemo, one text at a time (pitch shift 0, pace 1)."""
    return _run(source, texts, vocode=False)


def nemo_synthesize(source: str | os.PathLike[str] | dict[str, Any], texts: Sequence[str]) -> list[Any]:
    """Float32 audio for each text through NeMo (FastPitch .nemo + HiFi-GAN .nemo or Griffin-Lim)."""
    return _run(source, texts, vocode=True)


def _run(source: str | os.PathLike[str] | dict[str, Any], texts: Sequence[str], *, vocode: bool) -> list[Any]:
    import numpy as np
    import torch

    tts = import_nemo()
    quiet_nemo()
    fp_path, hifi_path, voc_spec, audio = _paths(source)
    try:
        fp = tts.FastPitchModel.restore_from(str(fp_path), map_location="cpu").eval()
        hifi = tts.HifiGanModel.restore_from(str(hifi_path), map_location="cpu", strict=False).eval() \
            if (vocode and hifi_path) else None
    except Exception as exc:
        raise LaneError("synthesis_failed", f"cannot restore the .nemo files ({type(exc).__name__}: {exc})") from exc
    out: list[Any] = []
    with torch.no_grad():
        for text in texts:
            ids = nemo_encode(fp.vocab, normalize(text))
            if not ids:
                raise LaneError("synthesis_failed", f"text {text!r} has no characters the voice can speak")
            t = torch.tensor([ids], dtype=torch.long)
            zeros, ones = torch.zeros(t.shape), torch.ones(t.shape)
            spect, num_frames, *_ = fp.forward_for_export(text=t, pitch=zeros, pace=ones)
            mel = spect[:, :, : int(num_frames[0])]
            if not vocode:
                out.append(mel[0].numpy().astype(np.float32))
            elif hifi is not None:
                out.append(hifi.generator(x=mel)[0].reshape(-1).numpy().astype(np.float32))
            else:
                from ..bundle.voice import griffin_lim

                params = voc_spec.get("params") or {}
                out.append(griffin_lim(mel[0].numpy(), audio or _audio_of(fp), n_iter=int(params.get("n_iter", 32)),
                                       power=float(params.get("power", 1.2))))
    return out


def griffin_lim_synthesis(fp: Any, texts: Sequence[str], params: dict[str, Any]) -> list[Any]:
    """Audio for each (normalised) text from a FastPitch model in memory (pitch shift 0, pace 1) through
    Griffin-Lim: what checkpoint selection listens to while training."""
    import torch

    from ..bundle.voice import griffin_lim

    audio = _audio_of(fp)
    dev = next(fp.parameters()).device
    out: list[Any] = []
    for text in texts:
        ids = nemo_encode(fp.vocab, text)
        if not ids:
            raise LaneError("synthesis_failed", f"text {text!r} has no characters the voice can speak")
        t = torch.tensor([ids], dtype=torch.long, device=dev)
        spect, num_frames, *_ = fp.forward_for_export(text=t, pitch=torch.zeros(t.shape, device=dev),
                                                      pace=torch.ones(t.shape, device=dev))
        mel = spect[0, :, : int(num_frames[0])].float().cpu().numpy()
        out.append(griffin_lim(mel, audio, n_iter=int(params.get("n_iter", 32)), power=float(params.get("power", 1.2))))
    return out


def _audio_of(fp: Any) -> dict[str, Any]:
    from .fastpitch import audio_settings

    return audio_settings(fp.cfg)
