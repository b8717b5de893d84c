"""Synthesis from a voice_bundle/1 with onnxruntime only: no torch, no NeMo.

    voice = OnnxVoice("bundles/<id>/voice_bundle")
    audio = voice.synthesize("Hello there.")          # float32 mono at voice.sample_rate
    mels = voice.mel("Hello there.")                   # (n_mels, frames) log-mel

Text goes through the lane's normaliser (lane.text.normalize), then the tokenizer replayed from the
bundle's tokenizer.json without NeMo (lane.text.tokenizers: characters, or ARPABET/IPA phonemes from the
G2P dictionary shipped beside it), FastPitch runs from fastpitch.onnx, and the vocoder is either the
HiFi-GAN generator ONNX or Griffin-Lim (librosa) with the parameters the manifest declares.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.reasons import LaneError
from ..text.normalize import normalize
from ..text.tokenizers import load_tokenizer_file

BUNDLE_VERSION = "voice_bundle/1"


def speaks_summary(tok: dict[str, Any]) -> list[str]:
    """What a voice speaks, in sentences (markdown code spans), from its manifest's `tokenizer` entry:
    tokenizer, G2P and dictionary (size, hash, licence), normaliser, and the fate of unknown words.
    The model card and the readiness report both show these."""
    sp = tok.get("speaks") or {}
    lines = [f"Tokenizer: {tok.get('class')} ({sp.get('type') or tok.get('type')}), {tok.get('n_tokens')} tokens."]
    if sp.get("g2p"):
        d = sp.get("dictionary") or {}
        lines.append(f"G2P: {sp['g2p']}; dictionary `{d.get('path')}`, {d.get('entries')} words, sha256 "
                     f"`{d.get('sha256')}`, licence {d.get('licence') or 'unknown'}.")
        h = sp.get("heteronyms") or {}
        if h:
            lines.append(f"Heteronyms: `{h.get('path')}`, {h.get('entries')} words, sha256 `{h.get('sha256')}`.")
    lines.append(f"Text normaliser: {sp.get('normalizer') or 'none recorded'}.")
    if sp.get("oov_policy"):
        lines.append(f"Words and symbols it cannot look up: {sp['oov_policy']}.")
    return lines


def read_manifest(bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(bundle_dir) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LaneError("bundle_invalid", f"{path}: cannot read manifest ({exc})") from exc
    if data.get("bundle_version") != BUNDLE_VERSION:
        raise LaneError("bundle_invalid", f"{path}: bundle_version {data.get('bundle_version')!r} != {BUNDLE_VERSION}")
    return dict(data)


def griffin_lim(mel: np.ndarray, audio: dict[str, Any], n_iter: int = 32, power: float = 1.2) -> np.ndarray:
    """Log-mel (NeMo AudioToMelSpectrogramPreprocessor, log(mel + guard)) to audio with Griffin-Lim."""
    import librosa

    basis = _mel_basis(audio)
    mag_mel = np.exp(mel.astype(np.float64)) - float(audio.get("log_zero_guard_value", 1e-5))
    mag_mel = np.clip(mag_mel, 0.0, None)
    raw = np.clip(np.linalg.pinv(basis) @ mag_mel, 1e-8, None)
    lin = raw ** power
    # the sharpening exponent changes the level: scale back to the unsharpened energy, so the output
    # level follows the spectrogram (no peak normalisation: a silent spectrogram stays silent audio)
    e_lin = float(np.linalg.norm(lin))
    if e_lin > 0:
        lin *= float(np.linalg.norm(raw)) / e_lin
    mag_power = float(audio.get("mag_power", 1.0))
    if mag_power != 1.0:
        lin = lin ** (1.0 / mag_power)
    y = librosa.griffinlim(lin, n_iter=n_iter, hop_length=int(audio["hop_length"]),
                           win_length=int(audio["win_length"]), n_fft=int(audio["n_fft"]), window="hann",
                           random_state=0)
    return np.asarray(np.clip(y, -1.0, 1.0), dtype=np.float32)


_BASIS_CACHE: dict[tuple[Any, ...], np.ndarray] = {}


def _mel_basis(audio: dict[str, Any]) -> np.ndarray:
    import librosa

    key = (audio["sample_rate"], audio["n_fft"], audio["n_mels"], audio.get("lowfreq"), audio.get("highfreq"))
    if key not in _BASIS_CACHE:
        _BASIS_CACHE[key] = librosa.filters.mel(sr=int(audio["sample_rate"]), n_fft=int(audio["n_fft"]),
                                                n_mels=int(audio["n_mels"]), fmin=float(audio.get("lowfreq") or 0),
                                                fmax=audio.get("highfreq"), norm="slaney")
    return _BASIS_CACHE[key]


class OnnxVoice:
    """A voice bundle loaded for synthesis with onnxruntime."""

    def __init__(self, bundle_dir: str | os.PathLike[str], *, threads: int | None = None, spin: bool = True) -> None:
        """`threads`: onnxruntime's intra-op threads (its default: one per core). `spin=False` lets idle
        worker threads sleep instead of spinning: better when the cores are shared (a server's event
        loop, other requests, other jobs; bench/results/rtf_levers_cpu.json)."""
        import onnxruntime as ort

        self.bundle_dir = Path(bundle_dir)
        self.manifest = read_manifest(self.bundle_dir)
        models = self.manifest.get("models") or {}
        spec = models.get("spectrogram") or {}
        self.vocoder_spec: dict[str, Any] = dict(models.get("vocoder") or {"type": "griffin_lim"})
        self.audio: dict[str, Any] = dict(self.manifest.get("audio") or {})
        self.sample_rate = int(self.manifest["sample_rate"])
        tok_path = self.bundle_dir / (self.manifest.get("tokenizer") or {}).get("path", "tokenizer.json")
        try:
            self.tokenizer = load_tokenizer_file(tok_path)
        except (OSError, ValueError, KeyError) as exc:  # TokenizerError is a ValueError
            raise LaneError("bundle_invalid", f"{tok_path}: unusable tokenizer ({exc})") from exc
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self._fp = ort.InferenceSession(str(self.bundle_dir / spec.get("onnx", "fastpitch.onnx")), opts,
                                            providers=["CPUExecutionProvider"])
            self._voc = None
            if self.vocoder_spec.get("type") == "hifigan":
                self._voc = ort.InferenceSession(str(self.bundle_dir / self.vocoder_spec["onnx"]), opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise LaneError("synthesis_failed", f"cannot load the bundle's ONNX files ({exc})") from exc
        self._fp_inputs = {i.name for i in self._fp.get_inputs()}

    # ---------------------------------------------------------------- text -> mel
    def tokens(self, text: str) -> list[int]:
        """The model's token ids for `text`: the lane's one normaliser (numbers, dates, money spelled
        out, the same as for the training data), then the tokenizer replayed from tokenizer.json."""
        ids = self.tokenizer.encode(normalize(text))
        if len([i for i in ids if self.tokenizer.tokens[i] != self.tokenizer.space]) == 0:
            raise LaneError("synthesis_failed", f"text {text!r} has no characters the voice can speak")
        return ids

    def mel_batch(self, texts: Sequence[str], pace: float = 1.0, *, padded: bool = False) -> list[np.ndarray]:
        """Log-mels (n_mels, frames) for each text.

        By default one FastPitch call per text, so each result equals `mel(text)` exactly. With
        padded=True all texts go through one padded call (faster on many short texts); padding can
        shift a rounded duration, so frame counts may then differ by a frame or two."""
        if not texts:
            return []
        if not padded and len(texts) > 1:
            return [m for t in texts for m in self.mel_batch([t], pace)]
        seqs = [self.tokens(t) for t in texts]
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.tokenizer.pad_id, dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
        feeds: dict[str, np.ndarray] = {"text": ids}
        if "pitch" in self._fp_inputs:
            feeds["pitch"] = np.zeros(ids.shape, dtype=np.float32)
        if "pace" in self._fp_inputs:
            feeds["pace"] = np.full(ids.shape, pace, dtype=np.float32)
        try:
            spect, num_frames = self._fp.run(["spect", "num_frames"], feeds)[:2]
        except Exception as exc:
            raise LaneError("synthesis_failed", f"FastPitch ONNX failed: {exc}") from exc
        return [spect[i, :, : int(num_frames[i])] for i in range(len(seqs))]

    def mel(self, text: str, pace: float = 1.0) -> np.ndarray:
        return self.mel_batch([text], pace)[0]

    # ---------------------------------------------------------------- mel -> audio
    def vocode(self, mel: np.ndarray) -> np.ndarray:
        if self._voc is not None:
            try:
                (audio,) = self._voc.run(None, {self._voc.get_inputs()[0].name: mel[None].astype(np.float32)})[:1]
            except Exception as exc:
                raise LaneError("synthesis_failed", f"vocoder ONNX failed: {exc}") from exc
            return np.asarray(audio, dtype=np.float32).reshape(-1)
        params = self.vocoder_spec.get("params") or {}
        return griffin_lim(mel, self.audio, n_iter=int(params.get("n_iter", 32)),
                           power=float(params.get("power", 1.2)))

    def synthesize_batch(self, texts: Sequence[str], pace: float = 1.0, *, padded: bool = False) -> list[np.ndarray]:
        return [self.vocode(m) for m in self.mel_batch(texts, pace, padded=padded)]

    def synthesize(self, text: str, pace: float = 1.0) -> np.ndarray:
        return self.synthesize_batch([text], pace)[0]
