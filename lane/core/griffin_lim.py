"""Griffin-Lim, the lane's cheap vocoder, in one place: its defaults (`GriffinLimParams`), the mel
settings it inverts (`MelSettings`) and the inversion itself (`griffin_lim`). The ONNX voice
(lane.bundle.voice), NeMo synthesis and checkpoint selection (lane.nemo) and the profile defaults
(lane.nemo.fastpitch.train_settings) all read from here. numpy and librosa are imported on first use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import numpy as np


class MelSettings(TypedDict, total=False):
    """How a log-mel was made (NeMo's AudioToMelSpectrogramPreprocessor): a bundle manifest's `audio`
    section and lane.nemo.fastpitch.audio_settings."""

    sample_rate: int
    n_mels: int
    n_fft: int
    win_length: int
    hop_length: int
    lowfreq: float
    highfreq: float | None
    window: str
    log_zero_guard_value: float
    mel_norm: str
    mag_power: float


@dataclass(frozen=True)
class GriffinLimParams:
    """Iterations and the magnitude sharpening exponent; the defaults are the lane's only ones.

    power 1.0 (no sharpening): on a fine-tuned voice it gave the lowest free-decoding CER, the highest
    speaker similarity and the lowest MCD of the powers tried, 0.9-1.5 (bench/README, "Griffin-Lim
    power"); 1.2, the earlier default, made 40 % more character errors."""

    n_iter: int = 32
    power: float = 1.0

    @classmethod
    def of(cls, params: Mapping[str, Any] | None) -> GriffinLimParams:
        """From a profile's `train.vocoder.griffin_lim` or a bundle's vocoder `params` (missing keys
        take the defaults)."""
        p = params or {}
        return cls(n_iter=int(p.get("n_iter", cls.n_iter)), power=float(p.get("power", cls.power)))

    def as_dict(self) -> dict[str, float]:
        return dict(asdict(self))


DEFAULTS = GriffinLimParams()


def griffin_lim(mel: np.ndarray, audio: MelSettings | Mapping[str, Any], n_iter: int = DEFAULTS.n_iter,
                power: float = DEFAULTS.power) -> np.ndarray:
    """Log-mel (NeMo AudioToMelSpectrogramPreprocessor, log(mel + guard)) to audio with Griffin-Lim."""
    import librosa
    import numpy as np

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


def vocode(mel: np.ndarray, audio: MelSettings | Mapping[str, Any], params: GriffinLimParams = DEFAULTS) -> np.ndarray:
    return griffin_lim(mel, audio, n_iter=params.n_iter, power=params.power)


_BASIS_CACHE: dict[tuple[Any, ...], Any] = {}


def _mel_basis(audio: MelSettings | Mapping[str, Any]) -> np.ndarray:
    import librosa

    key = (audio["sample_rate"], audio["n_fft"], audio["n_mels"], audio.get("lowfreq"), audio.get("highfreq"))
    if key not in _BASIS_CACHE:
        _BASIS_CACHE[key] = librosa.filters.mel(sr=int(audio["sample_rate"]), n_fft=int(audio["n_fft"]),
                                                n_mels=int(audio["n_mels"]), fmin=float(audio.get("lowfreq") or 0),
                                                fmax=audio.get("highfreq"), norm="slaney")
    return _BASIS_CACHE[key]
