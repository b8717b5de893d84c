"""Audio out of `lane serve`: float32 samples in [-1, 1], sentence after sentence, to the bytes of an
answer. Every format is an `Encoder`: `chunk(audio)` gives the bytes ready after one more sentence,
`finish()` the rest.

    wav   16-bit PCM RIFF at the voice's rate; streamed, its header's sizes are 0xFFFFFFFF (length
          unknown when the first sentence leaves), as OpenAI's streamed WAV; whole (the seed's
          /api/voice/speak), the exact sizes
    pcm   raw 16-bit little-endian mono at 24 kHz, what OpenAI's `pcm` is (resampled with soxr)
    mp3   MPEG layer III (LAME), 64 kbit/s          } encoded sentence by sentence with FFmpeg's
    aac   AAC-LC in ADTS frames, 64 kbit/s          } libraries (PyAV), so the first sentence leaves
    opus  Opus in Ogg at 24 kHz, 32 kbit/s          } while the next is synthesized
    flac  lossless (libsndfile through soundfile), once the whole text is synthesized

A format whose encoder the installation lacks is not offered (`available()`).
"""

from __future__ import annotations

import functools
import io
import struct
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

PCM_RATE = 24000
OPUS_RATE = 24000


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    streams: bool
    codec: str | None = None  # PyAV's encoder
    container: str | None = None  # PyAV's muxer
    bit_rate: int = 0


FORMATS = {
    "mp3": Format("mp3", "audio/mpeg", True, "libmp3lame", "mp3", 64000),
    "opus": Format("opus", "audio/ogg; codecs=opus", True, "libopus", "ogg", 32000),
    "aac": Format("aac", "audio/aac", True, "aac", "adts", 64000),
    "flac": Format("flac", "audio/flac", False),
    "wav": Format("wav", "audio/wav", True),
    "pcm": Format("pcm", "audio/pcm", True),
}


@functools.cache
def available() -> dict[str, Format]:
    """The formats this installation can encode (mp3, aac and opus need PyAV's codecs, flac libsndfile's)."""
    import soundfile as sf

    try:
        import av

        codecs = set(av.codecs_available)
    except ImportError:  # pragma: no cover - PyAV is a dependency
        codecs = set()
    return {name: fmt for name, fmt in FORMATS.items()
            if (fmt.codec is None or fmt.codec in codecs) and (name != "flac" or "FLAC" in sf.available_formats())}


def pcm16(audio: Any) -> bytes:
    return (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_header(sample_rate: int, n_samples: int | None = None) -> bytes:
    """A 44-byte RIFF/WAVE header for 16-bit mono; n_samples None: a stream of unknown length."""
    data = 0xFFFFFFFF if n_samples is None else 2 * n_samples
    riff = 0xFFFFFFFF if n_samples is None else 36 + data
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate,
                                                                           2 * sample_rate, 2, 16)
            + b"data" + struct.pack("<I", data))


class Encoder(Protocol):
    def chunk(self, audio: Any) -> bytes: ...
    def finish(self) -> bytes: ...


class PcmStream:
    """wav (streamed: header first, sizes unknown), pcm (24 kHz, the resampler keeps its state across
    sentences), and raw (16-bit at the voice's own rate: Wyoming's audio chunks)."""

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

    def finish(self) -> bytes:
        return self.chunk(np.zeros(0, dtype=np.float32), last=True) if self._resampler is not None else b""


class WholeFile:
    """wav with exact sizes, or flac: 16-bit samples kept until the end, then one file."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self.fmt = fmt
        self.sample_rate = int(sample_rate)
        self.parts: list[bytes] = []

    def chunk(self, audio: Any) -> bytes:
        self.parts.append(pcm16(audio))
        return b""

    def finish(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        if self.fmt == "wav":
            return wav_header(self.sample_rate, len(data) // 2) + data
        import soundfile as sf

        buf = io.BytesIO()
        sf.write(buf, np.frombuffer(data, dtype="<i2"), self.sample_rate, format="FLAC", subtype="PCM_16")
        return buf.getvalue()


class _Sink(io.RawIOBase):
    """Where the muxer writes: kept until taken (a stream, so no seeking back)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.parts.append(data)
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts = []
        return out


class AvStream:
    """mp3, aac, opus through PyAV: each sentence is encoded and muxed as it comes, and the bytes the
    muxer wrote leave with it (Ogg pages are kept short so Opus does not wait for a second sentence)."""

    def __init__(self, fmt: Format, sample_rate: int) -> None:
        import av

        self.rate = int(sample_rate)
        self.sink = _Sink()
        options = {"page_duration": "100000"} if fmt.container == "ogg" else {}
        container: Any = av.open(self.sink, mode="w", format=fmt.container, options=options)
        out_rate = OPUS_RATE if fmt.name == "opus" else self.rate
        stream: Any = container.add_stream(str(fmt.codec), rate=out_rate, layout="mono")
        stream.bit_rate = fmt.bit_rate
        self.container, self.stream = container, stream

    def chunk(self, audio: Any) -> bytes:
        import av

        x = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
        if x.size:
            frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
            frame.sample_rate = self.rate
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        return self.sink.take()

    def finish(self) -> bytes:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self.sink.take()


def encoder(fmt: Format, sample_rate: int, *, whole: bool = False) -> Encoder:
    """The encoder for `fmt` at the voice's rate (`whole`: wav with exact sizes, for the seed's route)."""
    if fmt.codec is not None:
        return AvStream(fmt, sample_rate)
    if fmt.name == "flac" or (whole and fmt.name == "wav"):
        return WholeFile(fmt.name, sample_rate)
    return PcmStream(fmt.name, sample_rate)

