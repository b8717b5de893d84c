"""Pitch for FastPitch, precomputed with pyworld straight into NeMo 3.0 TTSDataset's cache layout.

How NeMo 3.0 `nemo.collections.tts.data.dataset.TTSDataset` finds pitch (read from its source):

- folder: ``<sup_data_path>/pitch/`` (``Pitch.name == "pitch"``) unless ``pitch_folder`` is given;
- file: ``<rel_audio_path_as_text_id>.pt`` where that id is the manifest's ``audio_filepath``
  relative to the common parent directory of all audio in the manifest, suffix dropped, ``/``
  replaced by ``_``. Our clips all live in one folder and are named by content hash, so the id is the
  hash: the cache is keyed by the audio content;
- content: ``torch.load(path).float()``, a 1-D tensor, one value per frame, 0.0 where unvoiced; if the
  file is missing it runs ``librosa.pyin(audio, fmin, fmax, frame_length=win_length, sr, fill_na=0.0)``
  with pyin's default hop ``frame_length // 4`` and ``center=True``: ``1 + len(audio) // hop`` frames,
  the same count as the mel spectrogram (torch.stft, center=True), which FastPitch needs.

Estimator: pyworld DIO + StoneMask. DIO gives a raw F0 track quickly (with `speed=4` decimation
about 300x real time per core); StoneMask refines each frame's F0 from the instantaneous frequency,
which fixes most of DIO's coarse errors (speed 1 and 4 gave the same voiced ratio and median on
the demo voice, at 36x vs 194x real time for the pair). Both run on a copy resampled to 11.025 kHz
(F0 is under 2 kHz): F0 agrees with the full-rate estimate to 0.02 % (95th percentile) and
voicing on 98 % of frames, at twice the speed. Harvest is more robust on noisy audio but runs ~20-50x slower, which would miss the
100x real-time target; pyin runs ~4x real time per core here. The frame grid is forced to pyin's:
frame k is centred at ``k * hop / sr`` seconds.

The cache directory name carries a hash of the settings (estimator, rates, fmin/fmax, hop, window),
so a changed setting can never reuse stale pitch.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ESTIMATOR = "pyworld-dio-stonemask/1"


@dataclass(frozen=True)
class PitchSettings:
    sample_rate: int = 22050
    fmin: float = 65.40639132514966  # librosa.note_to_hz('C2'), NeMo's default
    fmax: float = 2093.004522404789  # librosa.note_to_hz('C7')
    hop_length: int = 256
    win_length: int = 1024
    n_fft: int = 1024
    dio_speed: int = 4  # DIO decimation (1..12); stonemask refines the F0 afterwards (part of the cache key)
    analysis_rate: int = 11025  # F0 is estimated on a copy at this rate (F0 < 2 kHz needs no more); cache key too

    def as_dict(self) -> dict[str, float | int]:
        return {"fmin": self.fmin, "fmax": self.fmax, "hop_length": self.hop_length, "win_length": self.win_length,
                "n_fft": self.n_fft, "sample_rate": self.sample_rate}

    def key(self) -> str:
        blob = json.dumps({"estimator": ESTIMATOR, "dio_speed": self.dio_speed, "analysis_rate": self.analysis_rate,
                           **self.as_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_profile(cls, data: dict, sample_rate: int) -> PitchSettings:
        p: dict[str, Any] = dict(data.get("pitch") or {})
        return cls(sample_rate=sample_rate, fmin=float(p.get("fmin", cls.fmin)), fmax=float(p.get("fmax", cls.fmax)),
                   hop_length=int(p.get("hop_length", cls.hop_length)), win_length=int(p.get("win_length", cls.win_length)),
                   n_fft=int(p.get("n_fft", cls.n_fft)), dio_speed=int(p.get("dio_speed", cls.dio_speed)),
                   analysis_rate=int(p.get("analysis_rate", cls.analysis_rate)))


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames pyin / torch.stft (center=True) give for `n_samples`."""
    return 1 + n_samples // hop_length


def estimate(audio: np.ndarray, s: PitchSettings) -> np.ndarray:
    """F0 in Hz per frame on pyin's frame grid (0.0 = unvoiced), float32."""
    import pyworld

    n = n_frames(len(audio), s.hop_length)
    fs = s.sample_rate
    x = np.ascontiguousarray(audio, dtype=np.float64)
    if s.analysis_rate and s.analysis_rate < fs and len(x):
        import soxr

        x = np.ascontiguousarray(soxr.resample(x, fs, s.analysis_rate, quality="HQ"), dtype=np.float64)
        fs = s.analysis_rate
    period_ms = 1000.0 * s.hop_length / s.sample_rate  # the frame grid stays the lane rate's
    f0, _t = pyworld.dio(x, fs, f0_floor=s.fmin, f0_ceil=min(s.fmax, fs / 2 - 1), frame_period=period_ms,
                         speed=s.dio_speed)
    if len(f0) < n:
        f0 = np.pad(f0, (0, n - len(f0)))
    f0 = np.ascontiguousarray(f0[:n])
    t = np.arange(n, dtype=np.float64) * s.hop_length / s.sample_rate
    f0 = pyworld.stonemask(x, f0, t, fs)
    f0[(f0 < s.fmin) | (f0 > s.fmax)] = 0.0
    return f0.astype(np.float32)


def cache_dir(base: Path, s: PitchSettings) -> Path:
    """The `sup_data_path` for these settings: ``<base>/sup_<settings hash>``."""
    return base / f"sup_{s.key()}"


def cache_file(sup_data_dir: Path, audio_path: Path) -> Path:
    return sup_data_dir / "pitch" / f"{audio_path.stem}.pt"


def write_cache(sup_data_dir: Path, audio_path: Path, f0: np.ndarray) -> Path:
    import torch

    out = cache_file(sup_data_dir, audio_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    torch.save(torch.from_numpy(np.asarray(f0, dtype=np.float32)), tmp)
    tmp.replace(out)
    return out


def read_cache(sup_data_dir: Path, audio_path: Path) -> np.ndarray | None:
    p = cache_file(sup_data_dir, audio_path)
    if not p.exists():
        return None
    import torch

    return torch.load(p).float().numpy()


def stats(tracks: list[np.ndarray]) -> dict[str, float]:
    """pitch_mean / pitch_std / pitch_min / pitch_max over voiced frames (Hz), as FastPitch wants."""
    voiced = np.concatenate([t[t > 0] for t in tracks]) if tracks else np.zeros(0)
    if len(voiced) == 0:
        return {"pitch_mean": 0.0, "pitch_std": 1.0, "pitch_min": 0.0, "pitch_max": 0.0, "voiced_frames": 0}
    return {"pitch_mean": float(np.mean(voiced)), "pitch_std": float(max(float(np.std(voiced)), 1e-3)),
            "pitch_min": float(np.min(voiced)), "pitch_max": float(np.max(voiced)), "voiced_frames": len(voiced)}


def remove_octave_errors(tracks: list[np.ndarray], factor: float = 2.2) -> tuple[list[np.ndarray], int]:
    """Mark frames more than `factor` times above or below the speaker's median F0 as unvoiced.

    DIO occasionally locks onto a harmonic (octave errors, a few hundred Hz too high) or a
    subharmonic; one speaker's F0 rarely leaves median/2.2 .. median*2.2. Returns (tracks, frames changed).
    """
    voiced = [t[t > 0] for t in tracks]
    allv = np.concatenate(voiced) if voiced else np.zeros(0)
    if len(allv) == 0:
        return tracks, 0
    med = float(np.median(allv))
    lo, hi = med / factor, med * factor
    out, changed = [], 0
    for t in tracks:
        bad = (t > 0) & ((t < lo) | (t > hi))
        changed += int(bad.sum())
        t = t.copy()
        t[bad] = 0.0
        out.append(t)
    return out, changed
