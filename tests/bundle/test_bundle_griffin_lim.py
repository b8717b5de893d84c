"""Griffin-Lim in the ONNX runtime follows the spectrogram's level: a silent spectrogram gives silent
audio (so validate's `silent` sanity check can fire), and a quieter one gives quieter audio."""

from __future__ import annotations

import numpy as np

from lane import metrics as ev
from lane.core.griffin_lim import griffin_lim

AUDIO = {"sample_rate": 22050, "n_mels": 80, "n_fft": 1024, "win_length": 1024, "hop_length": 256, "lowfreq": 0.0,
         "highfreq": 8000.0, "log_zero_guard_value": 1e-5, "mag_power": 1.0}


def _log_mel(y: np.ndarray) -> np.ndarray:
    import librosa

    spec = np.abs(librosa.stft(y, n_fft=1024, hop_length=256, win_length=1024, window="hann"))
    basis = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0, norm="slaney")
    return np.log(basis @ spec + 1e-5)


def test_silent_spectrogram_stays_silent() -> None:
    mel = np.full((80, 120), np.log(1e-5), dtype=np.float32)
    y = griffin_lim(mel, AUDIO, n_iter=8)
    assert np.max(np.abs(y)) < 1e-3
    assert "silent" in ev.sanity(y, 22050, "hello there").problems


def test_level_follows_the_spectrogram() -> None:
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 660 * t)).astype(np.float32)
    loud = griffin_lim(_log_mel(tone), AUDIO, n_iter=16)
    quiet = griffin_lim(_log_mel(0.05 * tone), AUDIO, n_iter=16)
    rms = [float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) for x in (tone, loud, quiet)]
    assert 0.3 < rms[1] / rms[0] < 3.0  # about the level of the audio the spectrogram came from
    assert 23 < 20 * np.log10(rms[1] / rms[2]) < 29  # 26 dB quieter in, about as much quieter out
    assert "silent" not in ev.sanity(loud, 22050, "a long vowel sound here").problems
