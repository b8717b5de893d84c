"""Audio helpers every metric shares: mono float32, resampling (soxr), reading files, trimming."""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike

from ..core.reasons import LaneError

ASR_SR = 16000
EVAL_SR = 16000


def to_mono_float(audio: ArrayLike) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] < x.shape[0] else x.mean(axis=0)
    return np.ascontiguousarray(x.reshape(-1), dtype=np.float32)


def resample(audio: ArrayLike, sr_in: int, sr_out: int) -> np.ndarray:
    x = to_mono_float(audio)
    if sr_in == sr_out or x.size == 0:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out).astype(np.float32)


def load_audio(path: str | os.PathLike[str], sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32; resample to `sr` when given."""
    import soundfile as sf

    try:
        x, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise LaneError("missing_audio_path", f"cannot read audio {path}: {exc}") from None
    x = x.mean(axis=1).astype(np.float32)
    if sr and sr != file_sr:
        return resample(x, file_sr, sr), sr
    return x, int(file_sr)


def trim(audio: ArrayLike, sr: int, top_db: float = 40.0) -> np.ndarray:
    """Leading/trailing silence removed (relative to the peak); silent input returns as is."""
    x = to_mono_float(audio)
    if x.size == 0 or not np.any(np.abs(x) > 0):
        return x
    import librosa

    y, _ = librosa.effects.trim(x, top_db=top_db, frame_length=int(0.025 * sr), hop_length=int(0.010 * sr))
    return y if y.size else x
