"""Is the consent voice the recordings' voice? GE2E similarity, normalised against a cohort.

The raw score is the cosine similarity of two GE2E embeddings (lane.metrics.evaluators.SpeakerEncoder,
the vendored resemblyzer encoder): the consent recording's, and the covered recordings' (the
normalised mean over up to `MAX_FILES` files, `MAX_FILE_S` seconds of each). Raw scores drift with
the voice and the recording conditions, so speaker-verification systems normalise them against a
cohort of other voices; this is adaptive symmetric normalisation (AS-norm):

    snorm = ((s - mean_e) / std_e + (s - mean_t) / std_t) / 2

where mean_e, std_e are over the `top_k` cohort voices most similar to the recordings, and mean_t,
std_t the same for the consent recording. The consent voice passes when `s >= similarity_min` and
`snorm >= snorm_min` (lane.consent.policy): close to the recordings, and clearly closer to them than
the nearest other voices are.

The cohort ships with the package (lane/assets/consent_cohort/: cohort.npz with one embedding per
voice, cohort.json naming each voice and how it was made); scripts/make_consent_cohort.py rebuilds
it from espeak-ng, Festival and flite voices. Its sha256 is pinned here, so an edited cohort is
refused rather than silently used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ..core.fsutil import sha256_file
from ..core.reasons import LaneError
from .policy import THRESHOLDS, Thresholds

COHORT_DIR = Path(__file__).resolve().parents[1] / "assets" / "consent_cohort"
COHORT_SHA256 = "f38d21a91ff8f3eb4f393bc46ddd7468c9d56bc348a9e03538deacfad10397e5"  # scripts/make_consent_cohort.py prints it
MAX_FILES = 12
MAX_FILE_S = 60.0


class VoiceRecord(TypedDict):
    """What a consent record keeps of the voice check (VoiceResult.as_dict, floats to 4 places)."""

    similarity: float
    snorm: float
    cohort_mean_recordings: float
    cohort_mean_consent: float
    cohort_nearest: float
    cohort_size: int
    top_k: int


class VoiceCheck(VoiceRecord):
    """The voice check again at verify time (lane.consent.gate.voice_again), with the consent audio."""

    audio: str


@dataclass
class VoiceResult:
    similarity: float
    snorm: float
    cohort_mean_recordings: float
    cohort_mean_consent: float
    cohort_nearest: float
    cohort_size: int
    top_k: int

    def problem(self, t: Thresholds = THRESHOLDS) -> str:
        """'' when the voices match, else why not (the detail of consent_speaker_mismatch)."""
        if self.similarity < t.similarity_min:
            return (f"the consent voice is not the recordings' voice: similarity {self.similarity:.3f} "
                    f"< {t.similarity_min}")
        if self.snorm < t.snorm_min:
            return (f"the consent voice is not clearly closer to the recordings than other voices are: "
                    f"S-norm {self.snorm:.2f} < {t.snorm_min} (similarity {self.similarity:.3f}, nearest cohort "
                    f"voice {self.cohort_nearest:.3f})")
        return ""

    def as_dict(self) -> VoiceRecord:
        return VoiceRecord(similarity=round(self.similarity, 4), snorm=round(self.snorm, 4),
                           cohort_mean_recordings=round(self.cohort_mean_recordings, 4),
                           cohort_mean_consent=round(self.cohort_mean_consent, 4),
                           cohort_nearest=round(self.cohort_nearest, 4), cohort_size=self.cohort_size, top_k=self.top_k)


@dataclass(frozen=True)
class Cohort:
    names: tuple[str, ...]
    embeddings: np.ndarray  # (n, 256), unit rows
    sha256: str


def load_cohort(path: str | os.PathLike[str] | None = None, expected_sha256: str | None = None) -> Cohort:
    """The shipped cohort (or `path`), its hash checked; LaneError(evaluator_unavailable) otherwise."""
    p = Path(path) if path else COHORT_DIR / "cohort.npz"
    want = COHORT_SHA256 if expected_sha256 is None and path is None else expected_sha256
    try:
        digest = sha256_file(p)
        if want and digest != want:
            raise ValueError(f"sha256 {digest[:16]} is not the pinned {want[:16]}: the cohort was changed")
        with np.load(p, allow_pickle=False) as z:
            emb = np.asarray(z["embeddings"], dtype=np.float32)
            names = tuple(str(n) for n in z["names"])
    except (OSError, ValueError, KeyError) as exc:
        raise LaneError("evaluator_unavailable", f"consent cohort {p}: {exc}") from None
    if emb.ndim != 2 or emb.shape[0] != len(names) or emb.shape[0] < 2:
        raise LaneError("evaluator_unavailable", f"consent cohort {p}: malformed ({emb.shape}, {len(names)} names)")
    return Cohort(names, emb / np.linalg.norm(emb, axis=1, keepdims=True), digest)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / (np.linalg.norm(x) + 1e-9)).astype(np.float32)


def score(consent: np.ndarray, recordings: np.ndarray, cohort: np.ndarray, top_k: int = THRESHOLDS.cohort_top_k) -> VoiceResult:
    """Raw and AS-normalised similarity of two embeddings against `cohort` (pure)."""
    e, t = _unit(recordings), _unit(consent)
    s = float(e @ t)
    k = max(2, min(top_k, cohort.shape[0]))
    ce = np.sort(cohort @ e)[-k:]
    ct = np.sort(cohort @ t)[-k:]
    snorm = 0.5 * ((s - ce.mean()) / (ce.std() + 1e-6) + (s - ct.mean()) / (ct.std() + 1e-6))
    return VoiceResult(s, float(snorm), float(ce.mean()), float(ct.mean()), float(max(ce.max(), ct.max())),
                       int(cohort.shape[0]), k)


def embed_files(encoder: Any, files: Sequence[Path]) -> np.ndarray:
    """One embedding for several recordings: the normalised mean of up to MAX_FILES of them, each
    at most MAX_FILE_S seconds (spread over the list, so a large folder is sampled evenly)."""
    from ..metrics.audio import load_audio

    if not files:
        raise LaneError("missing_audio_path", "no recordings to compare the consent voice with")
    picks = [files[round(i * (len(files) - 1) / max(1, MAX_FILES - 1))] for i in range(min(MAX_FILES, len(files)))]
    embs = []
    for f in dict.fromkeys(picks):
        x, sr = load_audio(f)
        embs.append(encoder.embed(x[: int(MAX_FILE_S * sr)], sr))
    return _unit(np.mean(embs, axis=0))


def speaker_encoder(weights_manifest: str | os.PathLike[str] | None, root: str | os.PathLike[str]) -> Any:
    """The speaker encoder the weights manifest lists (role `speaker_encoder`, licence checked)."""
    from ..metrics.evaluators import SpeakerEncoder, evaluator_status

    st = evaluator_status(weights_manifest, root, "speaker_encoder")
    if not st.ok:
        raise LaneError(st.state, f"speaker encoder for the consent check: {st.detail}")
    return SpeakerEncoder(next((p for p in st.paths if p.suffix == ".pt"), None))
