"""Quality metrics for a synthesized voice, and the thresholds that turn them into checks.

Every metric here is a plain function on audio arrays (float32, mono, with their sample rate) so it
can be tested on known inputs. The evaluators that need weights take them from the weights manifest
(`lane.core.weights.resolve_weight`) through `load_evaluators`; an evaluator that is missing or whose
licence is blocked is reported as such, and its checks become "not evaluated".

Metrics:

* intelligibility - `Asr` (pocketsphinx, the wheel's en-us model) + `cer` / `wer`. The decoder can use
  its general n-gram LM (``mode="lm"``) or a grammar built from the expected text (``mode="jsgf"``: a
  loop over the sentence's own words, so order, count and omissions still have to be heard). The
  gate is the ratio synth/reference, never the bare CER.
* speaker similarity - `SpeakerEncoder` (resemblyzer), cosine of utterance embeddings.
* spectral distance - `mcd_dtw` (mel-cepstral-distance, DTW-aligned).
* prosody - `prosody_metrics`: F0 RMSE / correlation and voiced-unvoiced error on DTW-aligned frames
  (pyworld harvest for F0, MFCC DTW from librosa), and `duration_ratio` of the trimmed speech.
* naturalness - `Dnsmos` (speechmos' DNSMOS ONNX models).
* sanity - `sanity`: NaN/inf, silence, clipping, long internal silences, length for the text.
* speed - `measure_rtf`.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .core.reasons import LaneError

ASR_SR = 16000
EVAL_SR = 16000
EVALUATOR_ROLES = ("asr", "speaker_encoder", "mos_estimator")


# ----------------------------------------------------------------------------------- audio helpers
def to_mono_float(audio) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] < x.shape[0] else x.mean(axis=0)
    return np.ascontiguousarray(x.reshape(-1), dtype=np.float32)


def resample(audio, sr_in: int, sr_out: int) -> np.ndarray:
    x = to_mono_float(audio)
    if sr_in == sr_out or x.size == 0:
        return x
    import soxr

    return soxr.resample(x, sr_in, sr_out).astype(np.float32)


def load_audio(path, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32; resample to `sr` when given."""
    import soundfile as sf

    try:
        x, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise LaneError("missing_audio_path", f"cannot read audio {path}: {exc}") from None
    x = x.mean(axis=1).astype(np.float32)
    if sr and sr != file_sr:
        return resample(x, file_sr, sr), sr
    return x, int(file_sr)


def trim(audio, sr: int, top_db: float = 40.0) -> np.ndarray:
    """Leading/trailing silence removed (relative to the peak); silent input returns as is."""
    x = to_mono_float(audio)
    if x.size == 0 or not np.any(np.abs(x) > 0):
        return x
    import librosa

    y, _ = librosa.effects.trim(x, top_db=top_db, frame_length=int(0.025 * sr), hop_length=int(0.010 * sr))
    return y if y.size else x


# ----------------------------------------------------------------------------------- text, CER/WER
_KEEP = re.compile(r"[^a-z' ]+")


def normalize_words(text: str) -> str:
    """Lower-case words for scoring: the lane's text normaliser when it is there (numbers spelled
    out), then everything but letters and apostrophes dropped."""
    try:
        from .data import normalize_text

        text = normalize_text(text)
    except Exception:
        pass
    return " ".join(_KEEP.sub(" ", text.lower()).split())


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate (edit distance / reference length) on normalised text."""
    import editdistance

    r, h = normalize_words(reference), normalize_words(hypothesis)
    if not r:
        return 0.0 if not h else 1.0
    return editdistance.eval(r, h) / len(r)


def wer(reference: str, hypothesis: str) -> float:
    import editdistance

    r, h = normalize_words(reference).split(), normalize_words(hypothesis).split()
    if not r:
        return 0.0 if not h else 1.0
    return editdistance.eval(r, h) / len(r)


# ----------------------------------------------------------------------------------- ASR
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

    def transcribe(self, audio, sr: int, *, expected: str | None = None, mode: str = "lm") -> str:
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

    def score(self, audio, sr: int, text: str, mode: str = "lm") -> dict[str, Any]:
        hyp = self.transcribe(audio, sr, expected=text, mode=mode)
        return {"hyp": hyp, "cer": cer(text, hyp), "wer": wer(text, hyp)}


# ----------------------------------------------------------------------------------- speaker
class SpeakerEncoder:
    """resemblyzer's VoiceEncoder (GE2E, 256-d, weights `pretrained.pt` from the wheel)."""

    name = "resemblyzer"

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        try:
            from resemblyzer import VoiceEncoder

            self.encoder = VoiceEncoder("cpu", verbose=False, weights_fpath=weights)
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"resemblyzer could not load {weights}: {exc}") from None

    def embed(self, audio, sr: int) -> np.ndarray:
        from resemblyzer import preprocess_wav

        x = preprocess_wav(np.nan_to_num(to_mono_float(audio)), source_sr=sr)
        if x.size < 1600:  # resemblyzer's VAD trimmed everything: embed the raw audio instead
            x = resample(np.nan_to_num(to_mono_float(audio)), sr, 16000)
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


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


# ----------------------------------------------------------------------------------- spectral / prosody
def mcd_dtw(synth, sr_s: int, ref, sr_r: int, *, sr: int = EVAL_SR) -> float:
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


def f0_contour(audio, sr: int, *, frame_ms: float = 10.0, fmin: float = 60.0, fmax: float = 500.0) -> np.ndarray:
    """F0 in Hz per `frame_ms` frame (0 = unvoiced): pyworld harvest (robust on short clips)."""
    import pyworld

    x = np.nan_to_num(to_mono_float(audio)).astype(np.float64)
    if x.size < int(0.05 * sr):
        return np.zeros(0)
    f0, _t = pyworld.harvest(x, sr, f0_floor=fmin, f0_ceil=fmax, frame_period=frame_ms)
    return f0


def _mfcc(audio, sr: int, hop: int) -> np.ndarray:
    import librosa

    return librosa.feature.mfcc(y=np.nan_to_num(to_mono_float(audio)), sr=sr, n_mfcc=20, hop_length=hop,
                                n_fft=4 * hop)


def dtw_path(synth, ref, sr: int, frame_ms: float = 10.0) -> np.ndarray:
    """Frame pairs (i_synth, j_ref) of a DTW over MFCCs (librosa), in time order."""
    import librosa

    hop = int(sr * frame_ms / 1000)
    a, b = _mfcc(synth, sr, hop), _mfcc(ref, sr, hop)
    _cost, wp = librosa.sequence.dtw(X=a[1:], Y=b[1:], metric="euclidean")
    return np.asarray(wp[::-1])


def prosody_metrics(synth, sr_s: int, ref, sr_r: int, *, sr: int = EVAL_SR) -> dict[str, float]:
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


def speech_duration(audio, sr: int) -> float:
    return trim(audio, sr).size / float(sr)


def duration_ratio(synth, sr_s: int, ref, sr_r: int) -> float:
    """Trimmed speech duration of the synthesis over that of the reference."""
    d_ref = speech_duration(ref, sr_r)
    return float("nan") if d_ref <= 0 else speech_duration(synth, sr_s) / d_ref


# ----------------------------------------------------------------------------------- naturalness
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

    def score(self, audio, sr: int) -> dict[str, float]:
        x = np.clip(np.nan_to_num(resample(audio, sr, 16000)), -1.0, 1.0)
        if x.size < 1600:
            x = np.pad(x, (0, 1600 - x.size))
        r = self.model(x, 16000, False)
        return {"ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"]), "bak": float(r["bak_mos"]),
                "p808": float(r["p808_mos"])}


# ----------------------------------------------------------------------------------- sanity
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


def sanity(audio, sr: int, text: str, *, silent_dbfs: float = -50.0, clip_level: float = 0.999,
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


# ----------------------------------------------------------------------------------- speed
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


# ----------------------------------------------------------------------------------- evaluators
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
    from .core.weights import resolve_weight

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


# ----------------------------------------------------------------------------------- thresholds
@dataclass(frozen=True)
class Threshold:
    metric: str
    min: float | None = None
    max: float | None = None
    optional: bool = False
    evaluator: str | None = None  # role whose absence makes the check "not evaluated"

    def judge(self, value: float | None) -> bool | None:
        """True/False against the bounds; None when there is no value (not evaluated)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"[{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f">= {self.min:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return "recorded"


# metric -> evaluator role needed to compute it
METRIC_EVALUATOR = {
    "cer_ratio": "asr", "wer_ratio": "asr", "cer_synth": "asr",
    "spk_sim": "speaker_encoder", "spk_margin": "speaker_encoder",
    "dnsmos_ratio": "mos_estimator", "dnsmos_ovrl": "mos_estimator",
}


def load_thresholds(eval_cfg: Mapping[str, Any]) -> list[Threshold]:
    """`eval.thresholds` (an ordered mapping metric -> {min, max, optional}) as Thresholds, in order.
    The order is the order of the checks, so it decides which failure is `first_fail`."""
    raw = eval_cfg.get("thresholds") or {}
    if not isinstance(raw, Mapping):
        raise LaneError("config_invalid", "eval.thresholds must be a mapping metric -> {min, max, optional}")
    out = []
    for metric, spec in raw.items():
        spec = spec or {}
        if not isinstance(spec, Mapping) or set(spec) - {"min", "max", "optional"}:
            raise LaneError("config_invalid", f"eval.thresholds.{metric}: use keys min, max, optional")
        try:
            lo = None if spec.get("min") is None else float(spec["min"])
            hi = None if spec.get("max") is None else float(spec["max"])
        except (TypeError, ValueError):
            raise LaneError("config_invalid", f"eval.thresholds.{metric}: min/max must be numbers") from None
        out.append(Threshold(str(metric), lo, hi, bool(spec.get("optional", False)), METRIC_EVALUATOR.get(str(metric))))
    return out


def nanmean(values: Iterable[float | None]) -> float:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(vals)) if vals else float("nan")


def safe_ratio(num: float, den: float, eps: float = 0.02) -> float:
    """(num + eps) / (den + eps): a ratio that stays finite when the reference scores 0 (CER)."""
    if num is None or den is None or math.isnan(num) or math.isnan(den):
        return float("nan")
    return (num + eps) / (den + eps)
