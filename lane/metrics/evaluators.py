"""The evaluators that need weights: ASR (pocketsphinx), the speaker encoder, DNSMOS. Each comes from
the weights manifest (`lane.core.weights.resolve_weight`) through `load_evaluators`; one that is
missing or whose licence is blocked is reported as such, and its checks become "not evaluated"."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..core.reasons import LaneError
from .audio import ASR_SR, resample, to_mono_float
from .text import cer, normalize_words, wer

EVALUATOR_ROLES = ("asr", "speaker_encoder", "mos_estimator")


class Asr:
    """pocketsphinx decoder over a model directory laid out like the wheel's `model/en-us`."""

    name = "pocketsphinx"

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

    def score(self, audio: ArrayLike, sr: int, text: str, mode: str = "lm") -> dict[str, Any]:
        hyp = self.transcribe(audio, sr, expected=text, mode=mode)
        return {"hyp": hyp, "cer": cer(text, hyp), "wer": wer(text, hyp)}


class SpeakerEncoder:
    """resemblyzer's GE2E voice encoder (256-d), vendored in `lane.metrics.speaker_encoder` with its
    weights (`lane/assets/voice_encoder/pretrained.pt`, the file of the Resemblyzer 0.1.4 wheel)."""

    name = "resemblyzer"

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        try:
            from .speaker_encoder import VoiceEncoder

            self.encoder = VoiceEncoder(weights)
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"speaker encoder could not load {weights}: {exc}") from None

    def embed(self, audio: ArrayLike, sr: int) -> np.ndarray:
        from .speaker_encoder import SAMPLING_RATE, preprocess_wav

        x = preprocess_wav(np.nan_to_num(to_mono_float(audio)), source_sr=sr)
        if x.size < 1600:  # the VAD trimmed everything: embed the raw audio instead
            x = resample(np.nan_to_num(to_mono_float(audio)), sr, SAMPLING_RATE)
        if x.size < 1600:
            x = np.pad(x, (0, 1600 - x.size))
        e = self.encoder.embed_utterance(x)
        return (e / (np.linalg.norm(e) + 1e-9)).astype(np.float32)

    def embed_speaker(self, clips: Iterable[tuple[np.ndarray, int]]) -> np.ndarray:
        """One speaker embedding: the normalised mean of the clips' utterance embeddings."""
        embs = [self.embed(a, sr) for a, sr in clips]
        if not embs:
            raise ValueError("no clips to embed")
        m = np.mean(embs, axis=0)
        return (m / (np.linalg.norm(m) + 1e-9)).astype(np.float32)


class Dnsmos:
    """DNSMOS (P.835 sig/bak/ovr + P.808) from speechmos' ONNX models, run with onnxruntime."""

    name = "dnsmos"

    def __init__(self, primary: str | os.PathLike[str] | None = None, p808: str | os.PathLike[str] | None = None):
        try:
            import speechmos.dnsmos as dn

            base = Path(dn.__file__).parent / "dnsmos_models"
            self.model = dn.DNSMOS(str(primary or base / "sig_bak_ovr.onnx"), str(p808 or base / "model_v8.onnx"))
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"DNSMOS could not load: {exc}") from None

    def score(self, audio: ArrayLike, sr: int) -> dict[str, float]:
        x = np.clip(np.nan_to_num(resample(audio, sr, 16000)), -1.0, 1.0)
        if x.size < 1600:
            x = np.pad(x, (0, 1600 - x.size))
        r = self.model(x, 16000, False)
        return {"ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"]), "bak": float(r["bak_mos"]),
                "p808": float(r["p808_mos"])}


@dataclass
class EvaluatorStatus:
    role: str
    state: str  # ok | evaluator_license_blocked | evaluator_unavailable
    detail: str
    paths: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def evaluator_status(weights_manifest: str | os.PathLike[str] | None, root: str | os.PathLike[str],
                     role: str) -> EvaluatorStatus:
    """Whether the weights manifest lists a usable, licence-allowed evaluator of `role`."""
    if not weights_manifest:
        return EvaluatorStatus(role, "evaluator_unavailable", "no weights manifest given")
    from ..core.weights import resolve_weight

    try:
        entries = resolve_weight(weights_manifest, root, role)
    except LaneError as err:
        return EvaluatorStatus(role, "evaluator_unavailable", f"{err.code}: {err.detail}")
    if not entries:
        return EvaluatorStatus(role, "evaluator_unavailable", f"no {role} entry in {weights_manifest}")
    blocked = [e for e in entries if not (e.weights_license_ok and e.code_license_ok)]
    if blocked:
        e = blocked[0]
        lic = e.weights_license if not e.weights_license_ok else e.code_license
        return EvaluatorStatus(role, "evaluator_license_blocked",
                               f"{e.id}: licence {lic!r} is not allowed ({e.state})")
    bad = [e for e in entries if not e.usable]
    if bad:
        e = bad[0]
        return EvaluatorStatus(role, "evaluator_unavailable", f"{e.id}: {e.state} ({'; '.join(e.problems)})")
    return EvaluatorStatus(role, "ok", ", ".join(e.id for e in entries),
                           [e.path for e in entries if e.path is not None])


@dataclass
class Evaluators:
    status: dict[str, EvaluatorStatus]
    asr: Asr | None = None
    speaker: SpeakerEncoder | None = None
    mos: Dnsmos | None = None


def load_evaluators(weights_manifest: str | os.PathLike[str] | None, root: str | os.PathLike[str],
                    roles: Sequence[str] = EVALUATOR_ROLES) -> Evaluators:
    """Load every evaluator whose manifest entry is usable; the others are recorded, not raised."""
    ev = Evaluators(status={})
    for role in roles:
        st = evaluator_status(weights_manifest, root, role)
        if st.ok:
            try:
                if role == "asr":
                    ev.asr = Asr(next((p for p in st.paths if p.is_dir()), None))
                elif role == "speaker_encoder":
                    ev.speaker = SpeakerEncoder(next((p for p in st.paths if p.suffix == ".pt"), None))
                elif role == "mos_estimator":
                    primary = next((p for p in st.paths if "sig_bak_ovr" in p.name), None)
                    p808 = next((p for p in st.paths if "v8" in p.name or "p808" in p.name), None)
                    ev.mos = Dnsmos(primary, p808)
            except LaneError as err:
                st = EvaluatorStatus(role, err.code, err.detail)
        ev.status[role] = st
    return ev
