"""Acoustic metrics on audio arrays (float32, mono, with their sample rate): speaker-embedding cosine,
mel-cepstral distance, F0 and voicing against a reference, duration, clip sanity, speed."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from .audio import EVAL_SR, resample, to_mono_float, trim
from .text import normalize_words


def cosine(a: ArrayLike, b: ArrayLike) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def mcd_dtw(synth: ArrayLike, sr_s: int, ref: ArrayLike, sr_r: int, *, sr: int = EVAL_SR) -> float:
    """Mel-cepstral distance (dB) after DTW alignment, with mel-cepstral-distance's defaults
    (32 ms frames, 8 ms hop, 20 mel bands, coefficients 1..15) at 16 kHz on trimmed audio."""
    from mel_cepstral_distance import compare_audio_files
    from scipy.io import wavfile

    a = trim(resample(synth, sr_s, sr), sr)
    b = trim(resample(ref, sr_r, sr), sr)
    if a.size == 0 or b.size == 0:
        return float("nan")
    with tempfile.TemporaryDirectory(prefix="lane-mcd-") as tmp:
        pa, pb = Path(tmp) / "a.wav", Path(tmp) / "b.wav"
        wavfile.write(pa, sr, np.nan_to_num(a).astype(np.float32))
        wavfile.write(pb, sr, np.nan_to_num(b).astype(np.float32))
        mcd, _penalty = compare_audio_files(pa, pb, sample_rate=sr, aligning="dtw", dtw_radius=None)
    return float(mcd)


def f0_contour(audio: ArrayLike, sr: int, *, frame_ms: float = 10.0, fmin: float = 60.0, fmax: float = 500.0) -> np.ndarray:
    """F0 in Hz per `frame_ms` frame (0 = unvoiced): pyworld harvest (robust on short clips)."""
    import pyworld

    x = np.nan_to_num(to_mono_float(audio)).astype(np.float64)
    if x.size < int(0.05 * sr):
        return np.zeros(0)
    f0, _t = pyworld.harvest(x, sr, f0_floor=fmin, f0_ceil=fmax, frame_period=frame_ms)
    return f0


def _mfcc(audio: ArrayLike, sr: int, hop: int) -> np.ndarray:
    import librosa

    return librosa.feature.mfcc(y=np.nan_to_num(to_mono_float(audio)), sr=sr, n_mfcc=20, hop_length=hop,
                                n_fft=4 * hop)


def dtw_path(synth: ArrayLike, ref: ArrayLike, sr: int, frame_ms: float = 10.0) -> np.ndarray:
    """Frame pairs (i_synth, j_ref) of a DTW over MFCCs (librosa), in time order."""
    import librosa

    hop = int(sr * frame_ms / 1000)
    a, b = _mfcc(synth, sr, hop), _mfcc(ref, sr, hop)
    _cost, wp = librosa.sequence.dtw(X=a[1:], Y=b[1:], metric="euclidean")
    return np.asarray(wp[::-1])


def prosody_metrics(synth: ArrayLike, sr_s: int, ref: ArrayLike, sr_r: int, *, sr: int = EVAL_SR) -> dict[str, float]:
    """F0 RMSE (Hz) and Pearson correlation on frames voiced in both, V/UV error rate on all aligned
    frames, after DTW over MFCCs of the trimmed signals. Also the F0 contours for plots."""
    a = trim(resample(synth, sr_s, sr), sr)
    b = trim(resample(ref, sr_r, sr), sr)
    fa, fb = f0_contour(a, sr), f0_contour(b, sr)
    nan = float("nan")
    if fa.size == 0 or fb.size == 0:
        return {"f0_rmse_hz": nan, "f0_corr": nan, "vuv_error": nan}
    wp = dtw_path(a, b, sr)
    i = np.clip(wp[:, 0], 0, fa.size - 1)
    j = np.clip(wp[:, 1], 0, fb.size - 1)
    xa, xb = fa[i], fb[j]
    va, vb = xa > 0, xb > 0
    vuv = float(np.mean(va != vb))
    both = va & vb
    if both.sum() < 3:
        return {"f0_rmse_hz": nan, "f0_corr": nan, "vuv_error": vuv}
    rmse = float(np.sqrt(np.mean((xa[both] - xb[both]) ** 2)))
    if np.std(xa[both]) < 1e-6 or np.std(xb[both]) < 1e-6:
        corr = 1.0 if np.allclose(xa[both], xb[both]) else 0.0
    else:
        corr = float(np.corrcoef(xa[both], xb[both])[0, 1])
    return {"f0_rmse_hz": rmse, "f0_corr": corr, "vuv_error": vuv}


def speech_duration(audio: ArrayLike, sr: int) -> float:
    return trim(audio, sr).size / float(sr)


def duration_ratio(synth: ArrayLike, sr_s: int, ref: ArrayLike, sr_r: int) -> float:
    """Trimmed speech duration of the synthesis over that of the reference."""
    d_ref = speech_duration(ref, sr_r)
    return float("nan") if d_ref <= 0 else speech_duration(synth, sr_s) / d_ref


@dataclass
class Sanity:
    finite: bool
    rms_dbfs: float
    clip_fraction: float
    max_internal_silence_s: float
    duration_s: float
    s_per_char: float
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def sanity(audio: ArrayLike, sr: int, text: str, *, silent_dbfs: float = -50.0, clip_level: float = 0.999,
           max_clip_fraction: float = 0.001, max_internal_silence_s: float = 1.0,
           s_per_char: tuple[float, float] = (0.03, 0.25)) -> Sanity:
    """Basic health of one synthesized clip. `problems` names each failed condition."""
    x = to_mono_float(audio)
    finite = bool(x.size) and bool(np.all(np.isfinite(x)))
    xs = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    rms = float(np.sqrt(np.mean(xs.astype(np.float64) ** 2))) if xs.size else 0.0
    rms_db = 20 * math.log10(rms) if rms > 0 else -200.0
    clip = float(np.mean(np.abs(xs) >= clip_level)) if xs.size else 0.0
    # longest internal pause: 20 ms frames quieter than 40 dB below the peak frame, inside the trimmed speech
    longest = 0.0
    y = trim(xs, sr)
    hop = max(1, int(0.02 * sr))
    if y.size >= hop:
        frames = y[: y.size // hop * hop].reshape(-1, hop)
        e = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        quiet = e < (e.max() * 10 ** (-40 / 20) if e.max() > 0 else 1.0)
        run = best = 0
        for q in quiet:
            run = run + 1 if q else 0
            best = max(best, run)
        longest = best * hop / sr
    dur = x.size / sr if sr else 0.0
    n_chars = max(1, len(normalize_words(text).replace(" ", "")))
    spc = (y.size / sr) / n_chars if sr else 0.0
    problems = []
    if not finite:
        problems.append("non_finite")
    if rms_db < silent_dbfs:
        problems.append("silent")
    if clip > max_clip_fraction:
        problems.append("clipping")
    if longest > max_internal_silence_s:
        problems.append("long_internal_silence")
    if "silent" not in problems and not (s_per_char[0] <= spc <= s_per_char[1]):
        problems.append("length_for_text")
    return Sanity(finite, rms_db, clip, longest, dur, spc, problems)


def measure_rtf(synthesize: Callable[[str], np.ndarray], texts: Sequence[str], sample_rate: int,
                *, warmup: int = 1) -> dict[str, float]:
    """Real-time factor: synthesis wall time / audio seconds produced (lower is faster)."""
    for t in list(texts)[:warmup]:
        synthesize(t)
    t0 = time.perf_counter()
    n = 0
    for t in texts:
        n += to_mono_float(synthesize(t)).size
    wall = time.perf_counter() - t0
    audio_s = n / float(sample_rate)
    return {"rtf": wall / audio_s if audio_s > 0 else float("inf"), "wall_s": wall, "audio_s": audio_s}


def nanmean(values: Iterable[float | None]) -> float:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(vals)) if vals else float("nan")


def safe_ratio(num: float, den: float, eps: float = 0.02) -> float:
    """(num + eps) / (den + eps): a ratio that stays finite when the reference scores 0 (CER)."""
    if num is None or den is None or math.isnan(num) or math.isnan(den):
        return float("nan")
    return (num + eps) / (den + eps)
