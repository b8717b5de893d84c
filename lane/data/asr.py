"""Transcription behind one interface, two engines.

- ``pocketsphinx``: the en-us acoustic model, dictionary and LM ship inside the PyPI wheel. Low
  accuracy on free speech, so the report always names the engine. When a transcript is given, the
  decoder's language model is built from that transcript (pocketsphinx.lm.ArpaBoLM): the hypotheses
  then serve as alignment anchors, and a transcript that does not match the audio still gives
  hypotheses that do not align (low confidence).
- ``nemo``: a local ``.nemo`` CTC/RNNT ASR model listed in the weights manifest with role ``asr``
  (resolved and licence-checked through lane.core.weights.resolve_weight).

`get_engine(kind, ...)` with kind ``auto`` prefers a usable NeMo ``.nemo`` and falls back to
pocketsphinx; no engine -> LaneError(asr_unavailable).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..core.reasons import LaneError
from .text import words as text_words

ASR_RATE = 16000


@dataclass
class AsrResult:
    text: str
    words: list[str] = field(default_factory=list)


class AsrEngine(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> AsrResult: ...


def _to16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    import soxr

    if sample_rate == ASR_RATE:
        return audio
    return soxr.resample(audio, sample_rate, ASR_RATE, quality="LQ")


class PocketsphinxEngine:
    name = "pocketsphinx"

    def __init__(self, lm_text: str | None = None) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as err:
            raise LaneError("asr_unavailable", f"pocketsphinx cannot be imported: {err}") from None
        kwargs: dict[str, object] = {"samprate": ASR_RATE, "loglevel": "FATAL"}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if lm_text:
            self._tmp = tempfile.TemporaryDirectory(prefix="lane-lm-")
            kwargs["lm"] = self._build_lm(lm_text, Path(self._tmp.name) / "transcript.arpa")
            self.name = "pocketsphinx+transcript_lm"
        try:
            self.decoder = Decoder(**kwargs)
        except RuntimeError as err:
            raise LaneError("asr_unavailable", f"pocketsphinx failed to start: {err}") from None

    @staticmethod
    def _build_lm(text: str, out: Path) -> str:
        from pocketsphinx.lm import ArpaBoLM

        sentences = [" ".join(text_words(s)) for s in re.split(r"(?<=[.!?;:])\s+|\n+", text)]
        corpus = "\n".join(s for s in sentences if s) + "\n"
        lm = ArpaBoLM(sentfile=io.StringIO(corpus), add_start=True, case="lower")
        lm.compute()
        lm.write_file(str(out))
        return str(out)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> AsrResult:
        x = _to16k(audio, sample_rate)
        pcm = (np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return AsrResult("", [])
        ws = [re.sub(r"\(\d+\)$", "", s.word) for s in d.seg()]
        ws = [w for w in ws if w and not (w.startswith("<") or w.startswith("[") or w.startswith("++"))]
        return AsrResult(hyp.hypstr, ws)


class NemoAsrEngine:
    name = "nemo"

    def __init__(self, path: Path) -> None:
        try:
            from nemo.collections.asr.models import ASRModel
        except ImportError as err:
            raise LaneError("asr_unavailable", f"NeMo ASR cannot be imported: {err}") from None
        try:
            self.model = ASRModel.restore_from(str(path), map_location="cpu")
        except Exception as err:  # NeMo raises many types for a bad archive
            raise LaneError("asr_unavailable", f"{path.name}: {type(err).__name__}: {str(err)[:160]}") from None
        self.model.eval()
        self.name = f"nemo:{path.name}"

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> AsrResult:
        import soundfile as sf

        x = _to16k(audio, sample_rate)
        with tempfile.TemporaryDirectory(prefix="lane-asr-") as tmp:
            wav = os.path.join(tmp, "clip.wav")
            sf.write(wav, x, ASR_RATE, subtype="PCM_16")
            out = self.model.transcribe([wav], batch_size=1, verbose=False)
        hyp = out[0] if isinstance(out, list) else out
        if isinstance(hyp, list):
            hyp = hyp[0]
        text = getattr(hyp, "text", hyp)
        text = str(text or "")
        return AsrResult(text, text_words(text))


def nemo_asr_paths(weights_manifest: str | None, root: Path) -> tuple[list[Path], list[str]]:
    """Usable `.nemo` files with role `asr` in the weights manifest, and why others are not usable."""
    if not weights_manifest:
        return [], ["no weights manifest given"]
    try:
        from ..core.weights import resolve_weight
    except ImportError:  # helper B's module not there: read the manifest JSON directly
        return _nemo_asr_paths_raw(weights_manifest, root)
    usable: list[Path] = []
    why: list[str] = []
    for e in resolve_weight(weights_manifest, root, "asr"):
        if e.path is None or not str(e.path).endswith(".nemo"):
            continue
        if getattr(e, "usable", False):
            usable.append(Path(e.path))
        else:
            why.append(f"{e.id}: {e.state}")
    return usable, why


def _nemo_asr_paths_raw(weights_manifest: str, root: Path) -> tuple[list[Path], list[str]]:
    import json

    p = Path(weights_manifest)
    p = p if p.is_absolute() else root / p
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise LaneError("weights_manifest_invalid", f"{p}: {err}") from None
    usable, why = [], []
    for e in data.get("entries", []):
        if e.get("role") == "asr" and str(e.get("path", "")).endswith(".nemo"):
            fp = Path(e["path"]) if Path(e["path"]).is_absolute() else root / e["path"]
            (usable.append(fp) if fp.is_file() else why.append(f"{e.get('id')}: file missing"))
    return usable, why


def get_engine(kind: str, *, weights_manifest: str | None, root: Path, transcript_text: str | None = None) -> AsrEngine:
    """The transcription engine for `kind` (auto | pocketsphinx | nemo)."""
    if kind not in ("auto", "pocketsphinx", "nemo"):
        raise LaneError("config_invalid", f"data.asr_engine must be auto, pocketsphinx or nemo, not {kind!r}")
    if kind in ("auto", "nemo"):
        paths, why = nemo_asr_paths(weights_manifest, root)
        if paths:
            return NemoAsrEngine(paths[0])
        if kind == "nemo":
            raise LaneError("asr_unavailable", "NeMo ASR asked for but no usable .nemo with role asr in the weights "
                            f"manifest ({'; '.join(why) or 'none listed'})")
    return PocketsphinxEngine(lm_text=transcript_text)
