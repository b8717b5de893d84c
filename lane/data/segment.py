"""Voice activity (silero-vad, its ONNX model from the PyPI wheel) and segmentation at pauses.

The VAD runs the ONNX model with onnxruntime directly on numpy (no torch import): the recording is
resampled to 16 kHz and cut into up to 256 contiguous streams that run as one batch, each carrying
its own recurrent state and warmed up on the 1 s of audio before its start. That turns ~56,000
sequential calls for 30 minutes into ~250 batched ones. The model's recurrent state has a long
memory, so probabilities are not bit-identical to one sequential pass, but speech regions agree
within two windows (64 ms; tests/data/test_data_units.py), well inside the clips' 100 ms padding.

Segmentation: speech regions (hysteresis on the speech probability, gaps shorter than `min_pause_s`
bridged) are merged while a clip is shorter than `min_clip_s` and split at the quietest frame
while longer than `max_clip_s`; each clip keeps `pad_s` of context on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..core.reasons import LaneError

VAD_RATE = 16000
WINDOW = 512
CONTEXT = 64
HOP_S = WINDOW / VAD_RATE  # 32 ms per probability


def vad_model_path() -> Path:
    try:
        return Path(str(resources.files("silero_vad") / "data" / "silero_vad.onnx"))
    except ModuleNotFoundError:
        raise LaneError("config_invalid", "silero-vad is not installed: bash scripts/setup.sh") from None


def vad_from_manifest(weights_manifest: str | None, root: Path) -> Path:
    """The silero-vad ONNX file: the manifest's usable `vad` entry when one is listed (hash and licence
    checked by lane.core.weights), else the file inside the installed wheel."""
    if weights_manifest:
        from ..core.reasons import REASONS
        from ..core.weights import resolve_weight

        entries = resolve_weight(weights_manifest, root, "vad")
        usable = [e for e in entries if getattr(e, "usable", False) and e.path is not None]
        if usable:
            return Path(str(usable[0].path))
        if entries:
            e = entries[0]
            code = e.state if e.state in REASONS else "weights_file_missing"
            raise LaneError(code, f"vad weights {e.id}: {e.state}")
    return vad_model_path()


class SileroVad:
    """Speech probability per 32 ms window of 16 kHz audio."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(model_path or vad_model_path()), sess_options=opts,
                                                    providers=["CPUExecutionProvider"])

    def probabilities(self, audio16k: np.ndarray, max_streams: int = 256, min_stream_windows: int = 160,
                      warmup: int = 32) -> np.ndarray:
        """One probability per 512-sample window. The windows are cut into up to `max_streams`
        contiguous streams run as one batch; each stream first runs `warmup` windows of the audio
        before its own start (outputs discarded), so its recurrent state is warm at the boundary."""
        n_win = int(np.ceil(len(audio16k) / WINDOW))
        if n_win == 0:
            return np.zeros(0, np.float32)
        n_streams = int(max(1, min(max_streams, n_win // min_stream_windows)))
        per = int(np.ceil(n_win / n_streams))
        n_full = len(audio16k) // WINDOW
        full = audio16k[: n_full * WINDOW].reshape(n_full, WINDOW)  # a view: no copy of the recording
        tail = np.zeros((1, WINDOW), np.float32)
        tail[0, : len(audio16k) - n_full * WINDOW] = audio16k[n_full * WINDOW:]
        starts = np.arange(n_streams) * per - warmup  # first window each stream runs (warm-up included)

        def rows(idx: np.ndarray) -> np.ndarray:
            batch = np.zeros((len(idx), WINDOW), np.float32)
            inside = (idx >= 0) & (idx < n_full)
            batch[inside] = full[idx[inside]]
            batch[idx == n_full] = tail[0]
            return batch
        state = np.zeros((2, n_streams, 128), np.float32)
        context = np.zeros((n_streams, CONTEXT), np.float32)
        sr = np.array(VAD_RATE, dtype=np.int64)
        out = np.empty((n_streams, per), np.float32)
        for i in range(per + warmup):
            chunk = rows(starts + i)
            inp = np.concatenate([context, chunk], axis=1)
            prob, state = self.session.run(None, {"input": inp, "state": state, "sr": sr})
            if i >= warmup:
                out[:, i - warmup] = prob[:, 0]
            context = chunk[:, -CONTEXT:]
        return out.reshape(-1)[:n_win]


def to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    import soxr

    if sample_rate == VAD_RATE:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, sample_rate, VAD_RATE, quality="LQ").astype(np.float32, copy=False)


def speech_regions(probs: np.ndarray, *, threshold: float = 0.5, min_speech_s: float = 0.25,
                   min_pause_s: float = 0.25) -> list[tuple[float, float]]:
    """(start_s, end_s) speech regions from per-window probabilities, hysteresis like silero's own
    get_speech_timestamps (enter at `threshold`, leave below `threshold - 0.15`)."""
    neg = max(threshold - 0.15, 0.01)
    regions: list[list[int]] = []
    start: int | None = None
    for i, p in enumerate(probs):
        if start is None and p >= threshold:
            start = i
        elif start is not None and p < neg:
            regions.append([start, i])
            start = None
    if start is not None:
        regions.append([start, len(probs)])
    merged: list[list[int]] = []
    gap_w = min_pause_s / HOP_S
    for r in regions:
        if merged and r[0] - merged[-1][1] < gap_w:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    return [(a * HOP_S, b * HOP_S) for a, b in merged if (b - a) * HOP_S >= min_speech_s]


@dataclass
class Segment:
    start: float  # seconds in the source recording (padding included)
    end: float
    speech_start: float
    speech_end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def _frame_rms_db(audio: np.ndarray, sample_rate: int, hop_s: float = 0.01) -> np.ndarray:
    hop = max(1, int(sample_rate * hop_s))
    n = len(audio) // hop
    if n == 0:
        return np.full(1, -120.0)
    frames = audio[: n * hop].reshape(n, hop)  # a view; energies in blocks so no full-length copy is made
    out = np.empty(n)
    step = 6000  # frames per block (60 s at 10 ms)
    for a in range(0, n, step):
        block = frames[a:a + step]
        out[a:a + step] = np.einsum("ij,ij->i", block, block, dtype=np.float64) / hop
    return 10 * np.log10(out + 1e-12)


def _split_long(a: float, b: float, db: np.ndarray, max_s: float, min_s: float) -> list[tuple[float, float]]:
    """Split [a, b] (seconds) at its quietest 10 ms frame until every part is <= max_s."""
    if b - a <= max_s:
        return [(a, b)]
    lo = a + min_s
    hi = b - min_s
    i0, i1 = int(lo / 0.01), int(hi / 0.01)
    if i1 <= i0 or i0 >= len(db):
        return [(a, b)]
    window = db[i0:min(i1, len(db))]
    # smooth over 100 ms so a single quiet frame inside a word does not win over a real pause
    k = 10
    sm = np.convolve(window, np.ones(k) / k, mode="same") if len(window) > k else window
    cut = (i0 + int(np.argmin(sm))) * 0.01
    return _split_long(a, cut, db, max_s, min_s) + _split_long(cut, b, db, max_s, min_s)


def segment(audio: np.ndarray, sample_rate: int, regions: list[tuple[float, float]], *, min_clip_s: float,
            max_clip_s: float, pad_s: float = 0.1) -> list[Segment]:
    """Clips at pauses: short regions merged, long ones split at the quietest point, padded."""
    total = len(audio) / sample_rate
    if not regions:
        return []
    db = _frame_rms_db(audio, sample_rate)
    pieces: list[tuple[float, float]] = []
    for a, b in regions:
        pieces.extend(_split_long(a, b, db, max_clip_s - 2 * pad_s, min(min_clip_s, 0.5)))
    groups: list[list[float]] = []
    for a, b in pieces:
        if groups:
            g = groups[-1]
            short = g[1] - g[0] + 2 * pad_s < min_clip_s
            if short and (b - g[0]) + 2 * pad_s <= max_clip_s:
                g[1] = b
                continue
        groups.append([a, b])
    # a short last group joins its predecessor when that still fits
    if len(groups) > 1 and groups[-1][1] - groups[-1][0] + 2 * pad_s < min_clip_s \
            and groups[-1][1] - groups[-2][0] + 2 * pad_s <= max_clip_s:
        groups[-2][1] = groups[-1][1]
        groups.pop()
    out: list[Segment] = []
    for i, (a, b) in enumerate(groups):
        prev_end = groups[i - 1][1] if i > 0 else 0.0
        next_start = groups[i + 1][0] if i + 1 < len(groups) else total
        s = max(a - pad_s, (prev_end + a) / 2, 0.0)
        e = min(b + pad_s, (b + next_start) / 2, total)
        out.append(Segment(round(s, 4), round(e, 4), round(a, 4), round(b, 4)))
    return out
