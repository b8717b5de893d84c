"""Speaker-similarity evaluators: `embed(audio, sr)` -> a unit vector; similarity is the cosine.

=========  ===============================================  ============================================
class      weights (role ``speaker_encoder``)               loader
=========  ===============================================  ============================================
``ge2e``   resemblyzer's GE2E ``pretrained.pt`` (shipped)    lane.metrics.speaker_encoder (vendored)
``titanet`` NeMo's TitaNet ``.nemo`` (EncDecSpeakerLabelModel)  EncDecSpeakerLabelModel.restore_from (local)
=========  ===============================================  ============================================
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike

from ..core.reasons import LaneError
from .audio import resample, to_mono_float


class SpeakerModel:
    name = "speaker"

    def embed(self, audio: ArrayLike, sr: int) -> np.ndarray:
        raise NotImplementedError

    def embed_speaker(self, clips: Iterable[tuple[np.ndarray, int]]) -> np.ndarray:
        """One speaker embedding: the normalised mean of the clips' utterance embeddings."""
        embs = [self.embed(a, sr) for a, sr in clips]
        if not embs:
            raise ValueError("no clips to embed")
        m = np.mean(embs, axis=0)
        return (m / (np.linalg.norm(m) + 1e-9)).astype(np.float32)


class SpeakerEncoder(SpeakerModel):
    """resemblyzer's GE2E voice encoder (256-d), vendored in `lane.metrics.speaker_encoder` with its
    weights (`lane/assets/voice_encoder/pretrained.pt`, the file of the Resemblyzer 0.1.4 wheel)."""

    name = "ge2e"

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        try:
            from .speaker_encoder import VoiceEncoder

            self.encoder = VoiceEncoder(weights)
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"speaker encoder could not load {weights}: {exc}") from None

    def embed(self, audio: ArrayLike, sr: int) -> np.ndarray:
        from .speaker_encoder import SAMPLING_RATE, preprocess_wav

        x = preprocess_wav(np.nan_to_num(to_mono_float(audio)), source_sr=sr)
        if x.size < 1600:  # the VAD trimmed everything: embed the raw audio instead
            x = resample(np.nan_to_num(to_mono_float(audio)), sr, SAMPLING_RATE)
        if x.size < 1600:
            x = np.pad(x, (0, 1600 - x.size))
        e = self.encoder.embed_utterance(x)
        return (e / (np.linalg.norm(e) + 1e-9)).astype(np.float32)


class TitaNet(SpeakerModel):
    """NeMo's speaker-verification model (TitaNet, or any EncDecSpeakerLabelModel) from a local `.nemo`;
    the embedding is the model's own (the decoder's pre-logit layer) for 16 kHz audio."""

    name = "titanet"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            from nemo.collections.asr.models import EncDecSpeakerLabelModel

            from ..nemo.runtime import quiet_nemo

            quiet_nemo()
            self.model = EncDecSpeakerLabelModel.restore_from(str(path), map_location="cpu")
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"TitaNet could not load {path}: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from None
        self.model.eval()
        self.sample_rate = int(self.model.cfg.get("sample_rate", 16000) or 16000)

    def embed(self, audio: ArrayLike, sr: int) -> np.ndarray:
        import torch

        x = np.nan_to_num(resample(audio, sr, self.sample_rate))
        if x.size < self.sample_rate // 2:
            x = np.pad(x, (0, self.sample_rate // 2 - x.size))
        with torch.no_grad():
            sig = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
            _logits, emb = self.model.forward(input_signal=sig, input_signal_length=torch.tensor([x.size]))
        e = emb[0].numpy().astype(np.float32)
        return (e / (np.linalg.norm(e) + 1e-9)).astype(np.float32)
