"""Synthesis through NeMo/PyTorch from .nemo files: the reference the ONNX path
(lane.bundle.voice.OnnxVoice) is compared against by the validate stage. A bundle's files come as a
`NemoSource` (lane.bundle.manifest.BundleManifest.nemo_source): this package reads no bundle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.griffin_lim import DEFAULTS, GriffinLimParams, MelSettings, vocode
from ..core.reasons import LaneError
from ..text.normalize import normalize
from .runtime import import_nemo, quiet_nemo
from .tokenizer import nemo_encode


@dataclass(frozen=True)
class NemoSource:
    """What NeMo synthesis restores: the FastPitch .nemo, the HiFi-GAN .nemo (None: Griffin-Lim with
    `griffin_lim`), and the mel settings (empty: the FastPitch config's)."""

    fastpitch: Path
    hifigan: Path | None = None
    griffin_lim: GriffinLimParams = DEFAULTS
    audio: MelSettings | None = None

    @classmethod
    def of(cls, source: NemoSource | Mapping[str, Any]) -> NemoSource:
        """A NemoSource as is, or from {"fastpitch": path, "vocoder": path | "griffin_lim",
        "audio": {...}, "vocoder_params": {...}}."""
        if isinstance(source, NemoSource):
            return source
        voc = source.get("vocoder", "griffin_lim")
        return cls(Path(source["fastpitch"]), None if voc == "griffin_lim" else Path(voc),
                   GriffinLimParams.of(source.get("vocoder_params")), MelSettings(**(source.get("audio") or {})))


Source = NemoSource | Mapping[str, Any]


def nemo_mels(source: Source, texts: Sequence[str]) -> list[Any]:
    """Log-mels (n_mels, frames) from the FastPitch .nemo, one text at a time (pitch shift 0, pace 1)."""
    return _run(NemoSource.of(source), texts, vocode_audio=False)


def nemo_synthesize(source: Source, texts: Sequence[str]) -> list[Any]:
    """Float32 audio for each text through NeMo (FastPitch .nemo + HiFi-GAN .nemo or Griffin-Lim)."""
    return _run(NemoSource.of(source), texts, vocode_audio=True)


def _run(src: NemoSource, texts: Sequence[str], *, vocode_audio: bool) -> list[Any]:
    import numpy as np
    import torch

    tts = import_nemo()
    quiet_nemo()
    try:
        fp = tts.FastPitchModel.restore_from(str(src.fastpitch), map_location="cpu").eval()
        hifi = tts.HifiGanModel.restore_from(str(src.hifigan), map_location="cpu", strict=False).eval() \
            if (vocode_audio and src.hifigan) else None
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
            if not vocode_audio:
                out.append(mel[0].numpy().astype(np.float32))
            elif hifi is not None:
                out.append(hifi.generator(x=mel)[0].reshape(-1).numpy().astype(np.float32))
            else:
                out.append(vocode(mel[0].numpy(), src.audio or _audio_of(fp), src.griffin_lim))
    return out


def griffin_lim_synthesis(fp: Any, texts: Sequence[str], params: GriffinLimParams) -> list[Any]:
    """Audio for each (normalised) text from a FastPitch model in memory (pitch shift 0, pace 1) through
    Griffin-Lim: what checkpoint selection listens to while training."""
    import torch

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
        out.append(vocode(mel, audio, params))
    return out


def _audio_of(fp: Any) -> MelSettings:
    from .fastpitch import audio_settings

    return audio_settings(fp.cfg)
