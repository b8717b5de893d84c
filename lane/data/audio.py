"""Audio I/O: decode any supported file to mono float32 at the lane rate, loudness, clip writing.

Decoding streams: soundfile reads blocks, each block is mixed down to mono and pushed through a
soxr resampling stream, so a long recording is held once, as mono at the target rate (a 30-minute
file at 22.05 kHz is ~160 MB of float32), never as several decoded copies. MP3 (and anything
soundfile cannot open) goes through librosa/audioread.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.reasons import LaneError

BLOCK_FRAMES = 1 << 18


@dataclass
class Decoded:
    audio: np.ndarray  # mono float32 at `sample_rate`
    sample_rate: int
    source_rate: int
    channels: int
    subtype: str
    timings: dict[str, float] = field(default_factory=dict)  # decode_s, resample_s

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def decode(path: str | os.PathLike[str], sample_rate: int) -> Decoded:
    """Decode `path` to mono float32 at `sample_rate`.

    Raises LaneError(audio_decode_failed) for an empty, truncated or non-audio file.
    """
    import soundfile as sf
    import soxr

    p = Path(path)
    if not p.is_file():
        raise LaneError("missing_audio_path", f"{p} does not exist")
    if p.stat().st_size == 0:
        raise LaneError("audio_decode_failed", f"{p.name} is empty (0 bytes)")
    t_dec = t_res = 0.0
    try:
        with sf.SoundFile(str(p)) as f:
            sr, ch, subtype = f.samplerate, f.channels, f.subtype or ""
            if f.frames == 0:
                raise LaneError("audio_decode_failed", f"{p.name} holds no audio frames")
            rs = soxr.ResampleStream(sr, sample_rate, 1, dtype="float32", quality="HQ") if sr != sample_rate else None
            # one preallocated output (grown only if the header under-counts): no list + concatenate copy
            out = np.empty(int(np.ceil(f.frames * sample_rate / sr)) + 64, np.float32)
            n_out = 0
            while True:
                t0 = time.perf_counter()
                block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                mono = block.mean(axis=1, dtype=np.float32) if ch > 1 else block[:, 0]
                t1 = time.perf_counter()
                t_dec += t1 - t0
                last = len(block) < BLOCK_FRAMES
                if rs is not None:
                    mono = rs.resample_chunk(mono, last=last)
                    t_res += time.perf_counter() - t1
                if len(mono):
                    if n_out + len(mono) > len(out):
                        out = np.resize(out, n_out + len(mono) + sample_rate)
                    out[n_out:n_out + len(mono)] = mono
                    n_out += len(mono)
                if last:
                    break
    except LaneError:
        raise
    except (RuntimeError, sf.LibsndfileError, TypeError, ValueError) as err:
        if p.suffix.lower() in (".mp3", ".m4a", ".opus"):
            return _decode_librosa(p, sample_rate)
        raise LaneError("audio_decode_failed", f"{p.name}: {str(err).splitlines()[0][:160]}") from None
    audio = out[:n_out]
    if len(audio) == 0:
        raise LaneError("audio_decode_failed", f"{p.name} holds no audio frames")
    if not np.all(np.isfinite(audio)):
        raise LaneError("audio_decode_failed", f"{p.name} decodes to NaN/inf samples")
    return Decoded(audio, sample_rate, sr, ch, subtype, {"decode_s": t_dec, "resample_s": t_res})


def _decode_librosa(p: Path, sample_rate: int) -> Decoded:
    t0 = time.perf_counter()
    try:
        import librosa

        y, sr = librosa.load(str(p), sr=None, mono=False)
    except Exception as err:  # audioread raises several unrelated types
        raise LaneError("audio_decode_failed", f"{p.name}: {type(err).__name__}: {str(err)[:160]}") from None
    ch = 1 if y.ndim == 1 else y.shape[0]
    mono = (y if y.ndim == 1 else y.mean(axis=0)).astype(np.float32)
    t1 = time.perf_counter()
    if sr != sample_rate:
        import soxr

        mono = soxr.resample(mono, sr, sample_rate, quality="HQ").astype(np.float32)
    if len(mono) == 0:
        raise LaneError("audio_decode_failed", f"{p.name} holds no audio frames")
    return Decoded(mono, sample_rate, int(sr), ch, "MP3", {"decode_s": t1 - t0, "resample_s": time.perf_counter() - t1})


def loudness_lufs(audio: np.ndarray, sample_rate: int, *, exact_below_s: float = 60.0) -> float:
    """Integrated loudness (ITU-R BS.1770-4) with pyloudnorm's K-weighting filters; -inf for silence
    or audio under 0.4 s.

    Up to `exact_below_s` this is pyloudnorm's own `Meter.integrated_loudness`. Longer audio runs the
    same filters chunk by chunk (filter state carried across chunks, float64 only per chunk) and the
    same 400 ms / 75 %-overlap gating on 100 ms energy sums, so a 30-minute recording needs no
    full-length float64 copies (pyloudnorm's own path holds several) and no per-block Python loop.
    """
    import pyloudnorm

    n = len(audio)
    if n < int(0.4 * sample_rate) + 1:
        return float("-inf")
    meter = pyloudnorm.Meter(sample_rate)
    if n <= exact_below_s * sample_rate:
        return float(meter.integrated_loudness(audio.astype(np.float64)))
    from scipy.signal import lfilter

    stages = list(meter._filters.values())
    zis = [np.zeros(max(len(f.a), len(f.b)) - 1) for f in stages]
    hop = round(0.1 * sample_rate)
    sums: list[np.ndarray] = []
    carry = np.zeros(0)
    chunk = hop * 600
    for start in range(0, n, chunk):
        x = audio[start:start + chunk].astype(np.float64)
        for k, f in enumerate(stages):
            x, zis[k] = lfilter(f.b, f.a, x, zi=zis[k])
            x *= f.passband_gain
        sq = np.concatenate([carry, x * x])
        m = len(sq) // hop
        sums.append(sq[: m * hop].reshape(m, hop).sum(axis=1))
        carry = sq[m * hop:]
    sub = np.concatenate(sums)
    n_blocks = int(np.round((n / sample_rate - 0.4) / 0.1)) + 1
    n_blocks = min(n_blocks, len(sub) - 3)
    if n_blocks <= 0:
        return float("-inf")
    cs = np.concatenate([[0.0], np.cumsum(sub)])
    z = (cs[4: n_blocks + 4] - cs[:n_blocks]) / (0.4 * sample_rate)
    with np.errstate(divide="ignore"):
        block_l = -0.691 + 10 * np.log10(z)
        gated = z[block_l >= -70.0]
        if len(gated) == 0:
            return float("-inf")
        rel_gate = -0.691 + 10 * np.log10(gated.mean()) - 10.0
        final = z[(block_l > rel_gate) & (block_l > -70.0)]
        if len(final) == 0:
            return float("-inf")
        return float(-0.691 + 10 * np.log10(final.mean()))


def loudness_gain(audio: np.ndarray, sample_rate: int, target_lufs: float, peak_limit: float = 0.97) -> float:
    """Linear gain that brings `audio` to `target_lufs`, capped so no sample exceeds `peak_limit`."""
    lufs = loudness_lufs(audio, sample_rate)
    if not np.isfinite(lufs):
        return 1.0
    gain = float(10 ** ((target_lufs - lufs) / 20))
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0 and gain * peak > peak_limit:
        gain = peak_limit / peak
    return gain


def pcm16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2")


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes of `audio` (deterministic: same samples -> same bytes -> same hash)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, pcm16(audio), sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def write_clip(audio: np.ndarray, sample_rate: int, out_dir: Path) -> tuple[Path, str]:
    """Write `audio` as 16-bit WAV named by the sha256 of its bytes; returns (path, sha256)."""
    data = wav_bytes(audio, sample_rate)
    digest = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{digest[:32]}.wav"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path, digest


def samples_sha256(audio: np.ndarray) -> str:
    """Hash of the 16-bit samples (duplicate detection independent of container/header)."""
    return hashlib.sha256(pcm16(audio).tobytes()).hexdigest()
