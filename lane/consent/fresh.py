"""Was the consent recording made for its challenge, or is it a training recording passed off as one?

Exact copies are caught by sha256 (lane.consent.record). This module catches the rest: a clip cut
from a recording, re-encoded, resampled or re-levelled. The consent recording is cut into 1-second
windows of speech; each window is slid along every covered recording (8 kHz, normalised
cross-correlation by FFT); a window whose best match reaches `copy_ncc_min` is copied audio. When
more than `copy_fraction_max` of the windows are copied, the recording is refused. Speech of the
same voice saying other words never lines up sample by sample, so a genuine reading scores near 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .policy import THRESHOLDS, Thresholds

SR = 8000
WINDOW_S = 1.0
BLOCK_S = 60.0
MAX_SCAN_S = 1800.0  # at most this much of the recordings is scanned


@dataclass
class CopyResult:
    windows: int
    copied: int
    best_ncc: float

    @property
    def fraction(self) -> float:
        return self.copied / self.windows if self.windows else 0.0

    def problem(self, t: Thresholds = THRESHOLDS) -> str:
        if self.windows and self.fraction > t.copy_fraction_max:
            return (f"the consent recording copies a covered recording: {self.copied} of its {self.windows} "
                    f"seconds of speech match one sample for sample (best correlation {self.best_ncc:.2f})")
        return ""

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "best_ncc": round(self.best_ncc, 4), "fraction": round(self.fraction, 4)}


def _windows(x: np.ndarray) -> np.ndarray:
    n = int(WINDOW_S * SR)
    w = x[: len(x) // n * n].reshape(-1, n)
    if not len(w):
        return w
    rms = np.sqrt((w**2).mean(axis=1))
    keep = rms > max(1e-4, 0.1 * float(np.median(rms[rms > 0])) if np.any(rms > 0) else 1e-4)
    return w[keep]


def _best_ncc(windows: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Per window, the highest normalised cross-correlation anywhere along `block`."""
    n = windows.shape[1]
    if len(block) < n:
        return np.zeros(len(windows))
    size = 1 << int(np.ceil(np.log2(len(block) + n)))
    fb = np.fft.rfft(block, size)
    fw = np.fft.rfft(windows[:, ::-1], size, axis=1)
    corr = np.fft.irfft(fw * fb, size, axis=1)[:, n - 1: len(block)]
    energy = np.cumsum(np.concatenate([[0.0], block.astype(np.float64) ** 2]))
    local = np.sqrt(np.maximum(energy[n:] - energy[:-n], 1e-12))
    norms = np.linalg.norm(windows, axis=1, keepdims=True) + 1e-9
    return np.asarray((corr / (norms * local)).max(axis=1))


def copied_fraction(consent: np.ndarray, sr: int, recordings: Sequence[Path], t: Thresholds = THRESHOLDS) -> CopyResult:
    """How much of `consent` (audio at `sr`) lines up with the recordings, sample for sample."""
    from ..metrics.audio import load_audio, resample

    windows = _windows(resample(consent, sr, SR))
    best = np.zeros(len(windows))
    scanned, step, over = 0.0, int(BLOCK_S * SR), int(WINDOW_S * SR)
    for f in recordings:
        if scanned >= MAX_SCAN_S or not len(windows):
            break
        x, _ = load_audio(f, SR)
        for start in range(0, len(x), step):
            best = np.maximum(best, _best_ncc(windows, x[start: start + step + over]))
        scanned += len(x) / SR
    return CopyResult(len(windows), int((best >= t.copy_ncc_min).sum()), float(best.max()) if len(best) else 0.0)
