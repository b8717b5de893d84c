"""The ASR evaluators behind one interface: `transcribe(audio, sr) -> str` and `score(audio, sr, text)`
(CER, WER and the hypothesis). Each decodes freely: none is told the expected sentence, except
pocketsphinx's advisory grammar mode (``mode="jsgf"``), which the validate stage reports beside the
gated, free-decoding number and never gates on.

=================  =====================================================  ===================================
class              weights (a manifest entry with role ``asr``)           loader
=================  =====================================================  ===================================
``pocketsphinx``   a model folder laid out like the wheel's model/en-us   pocketsphinx.Decoder, full en-us LM
``nemo_asr``       a ``.nemo`` (Parakeet CTC/RNNT/TDT, Canary, ...)       ASRModel.restore_from (local path)
``whisper``        an openai-whisper checkpoint ``.pt``                   whisper.load_model (local file)
``faster_whisper`` a CTranslate2 Whisper folder (model.bin,              faster_whisper.WhisperModel
                   tokenizer.json, config.json)                           (local folder, local_files_only)
=================  =====================================================  ===================================

Nothing here downloads: every loader is handed a local path, and a folder without its tokenizer is
refused rather than completed from a hub.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike

from ..core.reasons import LaneError
from .audio import ASR_SR, resample
from .text import cer, normalize_words, wer


def _unavailable(what: str, path: Any, exc: BaseException) -> LaneError:
    return LaneError("evaluator_unavailable", f"{what} could not load {path}: {type(exc).__name__}: {str(exc)[:200]}")


def _at_16k(audio: ArrayLike, sr: int) -> np.ndarray:
    return np.clip(np.nan_to_num(resample(audio, sr, ASR_SR)), -1.0, 1.0).astype(np.float32)


class AsrScore(TypedDict):
    """One transcription scored against the expected text."""

    hyp: str
    cer: float
    wer: float


class AsrModel:
    """What every ASR evaluator shares: scoring a transcription against the expected text."""

    name = "asr"
    supports_grammar = False

    def transcribe(self, audio: ArrayLike, sr: int) -> str:
        raise NotImplementedError

    def score(self, audio: ArrayLike, sr: int, text: str, mode: str = "lm") -> AsrScore:
        if mode != "lm":
            raise ValueError(f"{self.name} decodes freely only (mode 'lm'), not {mode!r}")
        hyp = self.transcribe(audio, sr)
        return AsrScore(hyp=hyp, cer=cer(text, hyp), wer=wer(text, hyp))


class Asr(AsrModel):
    """pocketsphinx decoder over a model directory laid out like the wheel's `model/en-us`: its general
    English n-gram LM (free decoding), or, for the advisory row only, a grammar of the expected words."""

    name = "pocketsphinx"
    supports_grammar = True

    def __init__(self, model_dir: str | os.PathLike[str] | None = None) -> None:
        from pocketsphinx import Decoder, get_model_path

        d = Path(model_dir) if model_dir else Path(get_model_path("en-us"))
        kw: dict[str, Any] = {"samprate": ASR_SR, "loglevel": "FATAL"}
        if (d / "en-us").is_dir():
            kw.update(hmm=str(d / "en-us"), lm=str(d / "en-us.lm.bin"), dict=str(d / "cmudict-en-us.dict"))
        try:
            self.decoder = Decoder(**kw)
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"pocketsphinx could not load {d}: {exc}") from None
        self._grammars: dict[str, str] = {}

    def grammar_for(self, expected: str) -> str | None:
        """JSGF: one or more of the expected sentence's in-dictionary words, in any order."""
        words = [w for w in dict.fromkeys(normalize_words(expected).split()) if self.decoder.lookup_word(w)]
        if not words:
            return None
        alts = " | ".join(words)
        return f"#JSGF V1.0;\ngrammar expected;\npublic <s> = ( {alts} )+ ;\n"

    def transcribe(self, audio: ArrayLike, sr: int, *, expected: str | None = None, mode: str = "lm") -> str:
        x = resample(audio, sr, ASR_SR)
        x = np.concatenate([np.zeros(ASR_SR // 5, np.float32), np.nan_to_num(x), np.zeros(ASR_SR // 5, np.float32)])
        pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        dec = self.decoder
        search = "_default"
        if mode == "jsgf":
            if expected is None:
                raise ValueError("mode='jsgf' needs the expected text")
            grammar = self.grammar_for(expected)
            if grammar is not None:
                if grammar not in self._grammars:
                    self._grammars[grammar] = f"g{len(self._grammars)}"
                    dec.add_jsgf_string(self._grammars[grammar], grammar)
                search = self._grammars[grammar]
        elif mode != "lm":
            raise ValueError(f"unknown ASR mode {mode!r} (lm | jsgf)")
        dec.activate_search(search)
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        hyp = dec.hyp()
        return hyp.hypstr if hyp is not None else ""

    def score(self, audio: ArrayLike, sr: int, text: str, mode: str = "lm") -> AsrScore:
        hyp = self.transcribe(audio, sr, expected=text, mode=mode)
        return AsrScore(hyp=hyp, cer=cer(text, hyp), wer=wer(text, hyp))


class NemoAsr(AsrModel):
    """A NeMo ASR `.nemo` (CTC, RNNT/TDT, or Canary's multitask model), restored from its local path."""

    name = "nemo_asr"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            from nemo.collections.asr.models import ASRModel

            from ..nemo.runtime import quiet_nemo

            quiet_nemo()
            self.model = ASRModel.restore_from(str(path), map_location="cpu")
        except Exception as exc:  # NeMo raises many types for a bad archive
            raise _unavailable("NeMo ASR", path, exc) from None
        self.model.eval()
        self._multitask = type(self.model).__name__ == "EncDecMultiTaskModel"

    def transcribe(self, audio: ArrayLike, sr: int) -> str:
        import tempfile

        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix="lane-eval-asr-") as tmp:
            wav = os.path.join(tmp, "clip.wav")
            sf.write(wav, _at_16k(audio, sr), ASR_SR, subtype="PCM_16")
            kw: dict[str, Any] = {"batch_size": 1, "verbose": False}
            if self._multitask:  # Canary: English transcription, no punctuation
                kw.update(source_lang="en", target_lang="en", pnc="no", taskname="asr")
            out = self.model.transcribe([wav], **kw)
        hyp: Any = out[0] if isinstance(out, (list, tuple)) else out
        if isinstance(hyp, list):
            hyp = hyp[0] if hyp else ""
        return str(getattr(hyp, "text", hyp) or "")


class WhisperAsr(AsrModel):
    """openai-whisper from a local checkpoint (`.pt`: {"dims", "model_state_dict"}), greedy decoding at
    temperature 0, English, no conditioning on earlier text."""

    name = "whisper"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not Path(path).is_file():
            raise LaneError("evaluator_unavailable", f"Whisper checkpoint {path} is not a file")
        try:
            import whisper

            self.model = whisper.load_model(str(path), device="cpu")
        except Exception as exc:
            raise _unavailable("openai-whisper", path, exc) from None

    def transcribe(self, audio: ArrayLike, sr: int) -> str:
        out = self.model.transcribe(_at_16k(audio, sr), language="en", task="transcribe", temperature=0.0,
                                    condition_on_previous_text=False, fp16=False, without_timestamps=True,
                                    verbose=None)
        return str(out.get("text") or "").strip()


class FasterWhisperAsr(AsrModel):
    """faster-whisper (CTranslate2) from a local converted folder; its tokenizer.json must be there (a
    missing one would make faster-whisper fetch it from a hub: refused instead)."""

    name = "faster_whisper"

    def __init__(self, folder: str | os.PathLike[str], threads: int = 0) -> None:
        d = Path(folder)
        missing = [f for f in ("model.bin", "tokenizer.json", "config.json") if not (d / f).is_file()]
        if missing:
            raise LaneError("evaluator_unavailable", f"CTranslate2 Whisper folder {d} lacks {', '.join(missing)} "
                            "(the lane never downloads a missing tokenizer or model file)")
        try:
            from faster_whisper import WhisperModel

            self.model = WhisperModel(str(d), device="cpu", compute_type="default", cpu_threads=threads,
                                      local_files_only=True)
        except Exception as exc:
            raise _unavailable("faster-whisper", d, exc) from None

    def transcribe(self, audio: ArrayLike, sr: int) -> str:
        segments, _info = self.model.transcribe(_at_16k(audio, sr), language="en", task="transcribe", beam_size=1,
                                                temperature=0.0, condition_on_previous_text=False, vad_filter=False,
                                                without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()
