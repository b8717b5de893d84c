"""Audio out of `lane serve`: float32 samples in [-1, 1] to the response formats.

    wav   16-bit PCM RIFF at the voice's rate; streamed answers carry a header whose sizes are
          0xFFFFFFFF (length unknown when the first sentence leaves), as OpenAI's streamed WAV does
    pcm   raw 16-bit little-endian mono at 24 kHz, what OpenAI's `pcm` is (resampled with soxr)
    flac  lossless (libsndfile through soundfile)
    mp3   MPEG layer III (libsndfile >= 1.1 through soundfile: LAME + mpg123 in the wheel)
    opus  Ogg Opus at 24 kHz (Opus has no 22.05 kHz mode)

wav and pcm stream sentence by sentence; flac, mp3 and opus are encoded once the whole text is
synthesized. A format whose encoder the installed libsndfile lacks is not offered (`available()`).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

PCM_RATE = 24000
OPUS_RATE = 24000


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    streams: bool
    sf_format: str | None = None
    sf_subtype: str | None = None


FORMATS = {
    "wav": Format("wav", "audio/wav", True),
    "pcm": Format("pcm", "audio/pcm", True),
    "flac": Format("flac", "audio/flac", False, "FLAC", "PCM_16"),
    "mp3": Format("mp3", "audio/mpeg", False, "MP3", "MPEG_LAYER_III"),
    "opus": Format("opus", "audio/ogg; codecs=opus", False, "OGG", "OPUS"),
}


def available() -> dict[str, Format]:
    """The formats this installation can encode (mp3 and opus need libsndfile's codecs)."""
    import soundfile as sf

    formats = sf.available_formats()
    out = {}
    for name, fmt in FORMATS.items():
        if fmt.sf_format is None or (fmt.sf_format in formats and fmt.sf_subtype in sf.available_subtypes(fmt.sf_format)):
            out[name] = fmt
    return out


def pcm16(audio: Any) -> bytes:
    return (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_header(sample_rate: int, n_samples: int | None = None) -> bytes:
    """A 44-byte RIFF/WAVE header for 16-bit mono; n_samples None: a stream of unknown length."""
    data = 0xFFFFFFFF if n_samples is None else 2 * n_samples
    riff = 0xFFFFFFFF if n_samples is None else 36 + data
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate,
                                                                           2 * sample_rate, 2, 16)
            + b"data" + struct.pack("<I", data))


def wav_bytes(audio: Any, sample_rate: int) -> bytes:
    pcm = pcm16(audio)
    return wav_header(int(sample_rate), len(pcm) // 2) + pcm


def resample(audio: Any, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    x = np.asarray(audio, dtype=np.float32)
    return x if rate_in == rate_out else np.asarray(soxr.resample(x, rate_in, rate_out), dtype=np.float32)


def encode(audio: Any, sample_rate: int, fmt: str) -> bytes:
    """The whole answer in `fmt` (wav, pcm, flac, mp3, opus)."""
    import soundfile as sf

    if fmt == "wav":
        return wav_bytes(audio, sample_rate)
    if fmt == "pcm":
        return pcm16(resample(audio, sample_rate, PCM_RATE))
    spec = FORMATS[fmt]
    rate = OPUS_RATE if fmt == "opus" else int(sample_rate)
    buf = io.BytesIO()
    sf.write(buf, resample(audio, sample_rate, rate), rate, format=spec.sf_format, subtype=spec.sf_subtype)
    return buf.getvalue()


class PcmStream:
    """Sentence after sentence to the bytes of a streamed answer: the WAV header first (wav), and a
    resampler that keeps its state across sentences (pcm at 24 kHz)."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self.fmt = fmt
        self.sample_rate = int(sample_rate)
        self.started = False
        self._resampler: Any = None
        if fmt == "pcm" and self.sample_rate != PCM_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(self.sample_rate, PCM_RATE, 1, dtype="float32")

    def chunk(self, audio: Any, *, last: bool = False) -> bytes:
        x = np.asarray(audio, dtype=np.float32)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=last)
        head = b""
        if not self.started and self.fmt == "wav":
            head = wav_header(self.sample_rate)
        self.started = True
        return head + pcm16(x)
