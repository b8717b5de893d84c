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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.griffin_lim import GriffinLimParams, MelSettings
from ..core.griffin_lim import vocode as griffin_lim_vocode
from ..core.reasons import LaneError
from ..text.normalize import normalize
from ..text.tokenizers import load_tokenizer_file
from .manifest import BundleManifest, VocoderModel


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


class OnnxVoice:
    """A voice bundle loaded for synthesis with onnxruntime."""

    def __init__(self, bundle_dir: str | os.PathLike[str], *, threads: int | None = None, spin: bool = True) -> None:
        """`threads`: onnxruntime's intra-op threads (its default: one per core). `spin=False` lets idle
        worker threads sleep instead of spinning: better when the cores are shared (a server's event
        loop, other requests, other jobs; bench/results/rtf_levers_cpu.json)."""
        import onnxruntime as ort

        self.bundle_dir = Path(bundle_dir)
        self.manifest = BundleManifest.load(self.bundle_dir)
        spec = self.manifest.spectrogram
        self.vocoder_spec: VocoderModel = self.manifest.vocoder
        self.audio: MelSettings = self.manifest.audio
        self.sample_rate = self.manifest.sample_rate
        tok_path = self.bundle_dir / self.manifest.tokenizer.get("path", "tokenizer.json")
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
        return griffin_lim_vocode(mel, self.audio, GriffinLimParams.of(self.vocoder_spec.get("params")))

    def synthesize_batch(self, texts: Sequence[str], pace: float = 1.0, *, padded: bool = False) -> list[np.ndarray]:
        return [self.vocode(m) for m in self.mel_batch(texts, pace, padded=padded)]

    def synthesize(self, text: str, pace: float = 1.0) -> np.ndarray:
        return self.synthesize_batch([text], pace)[0]
