"""Per-clip quality checks. Every check stores a number in the dataset manifest; the first failing
check (in the order below) is the clip's rejection reason (a clip-scope code from lane.core.reasons)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .text import out_of_vocabulary

FRAME_S = 0.01
# reasons decided by the audio alone (checked before any text check in `first_failure`)
AUDIO_REASONS = frozenset({"silent", "too_short", "too_long", "clipping", "low_snr", "excess_silence"})


@dataclass(frozen=True)
class Limits:
    min_clip_s: float = 1.0
    max_clip_s: float = 15.0
    max_clipping_ratio: float = 0.002
    min_snr_db: float = 15.0
    silent_dbfs: float = -55.0
    max_edge_silence_s: float = 1.0
    max_internal_silence_s: float = 2.0
    cps_min: float = 4.0
    cps_max: float = 30.0
    cps_mad_k: float = 5.0
    min_alignment_confidence: float = 0.5

    @classmethod
    def from_profile(cls, data: dict) -> Limits:
        kw = {k: float(data[k]) for k in cls.__dataclass_fields__ if k in data}
        return cls(**kw)


def frame_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    hop = max(1, int(sample_rate * FRAME_S))
    n = len(audio) // hop
    if n == 0:
        return np.full(1, -120.0)
    frames = audio[: n * hop].reshape(n, hop).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def clipping_ratio(raw: np.ndarray, level: float = 0.985) -> float:
    """Fraction of samples at (or beyond) full scale, measured before any gain is applied."""
    if len(raw) == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(raw) >= level)) / len(raw)


def snr_db(db: np.ndarray) -> float:
    """Frame-energy SNR estimate: 95th percentile (speech) minus 10th percentile (noise floor), dB."""
    if len(db) < 5:
        return 0.0
    return float(min(np.percentile(db, 95) - max(np.percentile(db, 10), -100.0), 100.0))


def silences(db: np.ndarray) -> tuple[float, float, float]:
    """(leading, trailing, longest internal) silence in seconds; silent = 40 dB under the loudest frames."""
    thr = max(np.percentile(db, 98) - 40.0, -70.0)
    voiced = np.flatnonzero(db > thr)
    if len(voiced) == 0:
        return len(db) * FRAME_S, len(db) * FRAME_S, 0.0
    lead = voiced[0] * FRAME_S
    trail = (len(db) - 1 - voiced[-1]) * FRAME_S
    gaps = np.diff(voiced) - 1
    internal = float(gaps.max()) * FRAME_S if len(gaps) else 0.0
    return float(lead), float(trail), internal


def measure(raw: np.ndarray, audio: np.ndarray, sample_rate: int, text: str) -> dict[str, float]:
    """Numbers for one clip: `raw` is the decoded audio before gain, `audio` the normalised clip."""
    db = frame_db(audio, sample_rate)
    raw_db = frame_db(raw, sample_rate)
    lead, trail, internal = silences(db)
    dur = len(audio) / sample_rate
    speech_s = max(dur - lead - trail, 1e-3)
    letters = sum(c.isalpha() for c in text)
    return {
        "duration_s": round(dur, 4),
        "clipping_ratio": round(clipping_ratio(raw), 6),
        "snr_db": round(snr_db(db), 2),
        "peak_dbfs": round(float(20 * np.log10(np.max(np.abs(raw)) + 1e-9)), 2),
        "rms_dbfs": round(float(np.percentile(raw_db, 95)), 2),
        "lead_silence_s": round(lead, 3),
        "trail_silence_s": round(trail, 3),
        "internal_silence_s": round(internal, 3),
        "chars_per_s": round(letters / speech_s, 3),
    }


def first_failure(values: dict[str, float], text: str, lim: Limits) -> tuple[str | None, str]:
    """(reason code, detail) of the first failing check, or (None, "")."""
    d = values["duration_s"]
    if values["rms_dbfs"] < lim.silent_dbfs:
        return "silent", f"loudest frames {values['rms_dbfs']:.1f} dBFS < {lim.silent_dbfs}"
    if d < lim.min_clip_s:
        return "too_short", f"{d:.2f} s < {lim.min_clip_s}"
    if d > lim.max_clip_s:
        return "too_long", f"{d:.2f} s > {lim.max_clip_s}"
    if values["clipping_ratio"] > lim.max_clipping_ratio:
        return "clipping", f"{values['clipping_ratio']:.4f} of samples at full scale > {lim.max_clipping_ratio}"
    if values["snr_db"] < lim.min_snr_db:
        return "low_snr", f"SNR {values['snr_db']:.1f} dB < {lim.min_snr_db}"
    edge = max(values["lead_silence_s"], values["trail_silence_s"])
    if edge > lim.max_edge_silence_s:
        return "excess_silence", f"edge silence {edge:.2f} s > {lim.max_edge_silence_s}"
    if values["internal_silence_s"] > lim.max_internal_silence_s:
        return "excess_silence", f"internal silence {values['internal_silence_s']:.2f} s > {lim.max_internal_silence_s}"
    if not text.strip():
        return "empty_text", "no text after normalisation"
    oov = out_of_vocabulary(text)
    if oov:
        return "text_out_of_vocabulary", "characters " + "".join(oov[:10])
    cps = values["chars_per_s"]
    if not lim.cps_min <= cps <= lim.cps_max:
        return "speaking_rate_outlier", f"{cps:.1f} chars/s outside [{lim.cps_min}, {lim.cps_max}]"
    return None, ""


def rate_outliers(cps: list[float], k: float) -> list[bool]:
    """Robust outliers: |cps - median| > k * 1.4826 * MAD (only with >= 10 clips)."""
    if len(cps) < 10:
        return [False] * len(cps)
    a = np.asarray(cps)
    med = float(np.median(a))
    mad = float(np.median(np.abs(a - med))) * 1.4826
    if mad <= 1e-6:
        return [False] * len(cps)
    return [bool(abs(x - med) > k * mad) for x in a]
