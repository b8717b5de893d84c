"""The GE2E speaker encoder of resemblyzer 0.1.4, vendored so that `pip install` alone brings it.

resemblyzer (github.com/resemble-ai/Resemblyzer, Apache-2.0) cannot be a dependency: its metadata
requires the dead `typing` backport and the source-only `webrtcvad`, which needs a C compiler and
clashes with the `webrtcvad-wheels` the lane already uses. What it does is small, so it is here:

* preprocessing (`preprocess_wav`): resample to 16 kHz, raise the volume to -30 dBFS (never lower
  it), cut silences longer than 6 x 30 ms found by webrtcvad (mode 3, moving average of 8 windows);
* features (`wav_to_mel`): a 40-band mel spectrogram (power, not log) of 25 ms windows every 10 ms;
* model (`VoiceEncoder`): a 3-layer LSTM (40 -> 256) whose last hidden state goes through a linear
  layer, a ReLU and an L2 normalisation; an utterance is cut into partials of 160 frames, 1.3 per
  second (the last kept if it is at least 75 % covered), and its embedding is the normalised mean of
  the partials' embeddings.

The weights are resemblyzer's own `pretrained.pt`, byte for byte (sha256 39373b86..., the file in the
Resemblyzer 0.1.4 wheel on PyPI), shipped at `lane/assets/voice_encoder/` with resemblyzer's licence
beside it; the weights manifest names them `pkg://lane/assets/voice_encoder/pretrained.pt`.
Checked against resemblyzer 0.1.4 itself: identical embeddings (largest difference 0.0) on 26
espeak-ng clips at 16, 22.05 and 44.1 kHz, quiet and noisy; tests/test_install.py pins a reference.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

# resemblyzer/hparams.py
SAMPLING_RATE = 16000
MEL_WINDOW_LENGTH_MS = 25
MEL_WINDOW_STEP_MS = 10
MEL_N_CHANNELS = 40
PARTIALS_N_FRAMES = 160  # 1.6 s
VAD_WINDOW_LENGTH_MS = 30
VAD_MOVING_AVERAGE_WIDTH = 8
VAD_MAX_SILENCE_LENGTH = 6
AUDIO_NORM_TARGET_DBFS = -30
MODEL_HIDDEN_SIZE = 256
MODEL_EMBEDDING_SIZE = 256
MODEL_NUM_LAYERS = 3

INT16_MAX = (2**15) - 1
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "assets" / "voice_encoder" / "pretrained.pt"
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"


# ----------------------------------------------------------------------------------- preprocessing
def normalize_volume(wav: np.ndarray, target_dbfs: float, increase_only: bool = False) -> np.ndarray:
    rms = np.sqrt(np.mean((wav * INT16_MAX) ** 2))
    wave_dbfs = 20 * np.log10(rms / INT16_MAX)
    change = target_dbfs - wave_dbfs
    if change < 0 and increase_only:
        return wav
    return wav * (10 ** (change / 20))


def trim_long_silences(wav: np.ndarray) -> np.ndarray:
    """Keep the voiced windows (webrtcvad) and at most VAD_MAX_SILENCE_LENGTH silent ones around them."""
    import webrtcvad
    from scipy.ndimage import binary_dilation

    samples_per_window = (VAD_WINDOW_LENGTH_MS * SAMPLING_RATE) // 1000
    wav = wav[: len(wav) - (len(wav) % samples_per_window)]
    pcm = np.round(wav * INT16_MAX).astype(np.int16).tobytes()  # native 16-bit PCM, as struct.pack("%dh")
    vad = webrtcvad.Vad(mode=3)
    flags = np.array([vad.is_speech(pcm[start * 2:(start + samples_per_window) * 2], sample_rate=SAMPLING_RATE)
                      for start in range(0, len(wav), samples_per_window)])

    width = VAD_MOVING_AVERAGE_WIDTH
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    ret = np.cumsum(padded, dtype=float)
    ret[width:] = ret[width:] - ret[:-width]
    mask = np.round(ret[width - 1:] / width).astype(bool)
    mask = binary_dilation(mask, np.ones(VAD_MAX_SILENCE_LENGTH + 1))
    mask = np.repeat(mask, samples_per_window)
    return wav[mask]


def preprocess_wav(wav: np.ndarray, source_sr: int | None = None) -> np.ndarray:
    """resemblyzer.preprocess_wav on an array: resample to 16 kHz, normalise volume, trim silences."""
    import librosa

    if source_sr is not None:
        wav = librosa.resample(wav, orig_sr=source_sr, target_sr=SAMPLING_RATE)
    wav = normalize_volume(wav, AUDIO_NORM_TARGET_DBFS, increase_only=True)
    return trim_long_silences(wav)


def wav_to_mel(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) mel power spectrogram of 16 kHz audio."""
    import librosa

    frames = librosa.feature.melspectrogram(
        y=wav, sr=SAMPLING_RATE,
        n_fft=int(SAMPLING_RATE * MEL_WINDOW_LENGTH_MS / 1000),
        hop_length=int(SAMPLING_RATE * MEL_WINDOW_STEP_MS / 1000),
        n_mels=MEL_N_CHANNELS)
    return np.asarray(frames, dtype=np.float32).T


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75) -> tuple[list[slice], list[slice]]:
    """Waveform and mel slices of the partial utterances (resemblyzer's compute_partial_slices)."""
    samples_per_frame = int(SAMPLING_RATE * MEL_WINDOW_STEP_MS / 1000)
    n_frames = int(np.ceil((n_samples + 1) / samples_per_frame))
    frame_step = int(np.round((SAMPLING_RATE / rate) / samples_per_frame))
    if not 0 < frame_step <= PARTIALS_N_FRAMES:
        raise ValueError(f"partial rate {rate} out of range")
    wav_slices, mel_slices = [], []
    steps = max(1, n_frames - PARTIALS_N_FRAMES + frame_step + 1)
    for i in range(0, steps, frame_step):
        mel_slices.append(slice(i, i + PARTIALS_N_FRAMES))
        wav_slices.append(slice(i * samples_per_frame, (i + PARTIALS_N_FRAMES) * samples_per_frame))
    last = wav_slices[-1]
    coverage = (n_samples - last.start) / (last.stop - last.start)
    if coverage < min_coverage and len(mel_slices) > 1:
        mel_slices, wav_slices = mel_slices[:-1], wav_slices[:-1]
    return wav_slices, mel_slices


# ----------------------------------------------------------------------------------- model
def load_state(weights: str | os.PathLike[str]) -> dict[str, Any]:
    """The LSTM and linear tensors of a resemblyzer checkpoint ({"model_state": ...}), loaded with
    weights_only (no pickled code runs)."""
    import torch

    ckpt = torch.load(Path(weights), map_location="cpu", weights_only=True)
    state = ckpt.get("model_state", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{weights}: not a resemblyzer checkpoint (no model_state)")
    # similarity_weight/bias are GE2E training-loss parameters, unused for embedding
    return {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}


class VoiceEncoder:
    """GE2E voice encoder; `embed_utterance(16 kHz preprocessed wav)` -> 256-d unit vector."""

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        import torch

        self.weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        self.lstm = torch.nn.LSTM(MEL_N_CHANNELS, MODEL_HIDDEN_SIZE, MODEL_NUM_LAYERS, batch_first=True)
        self.linear = torch.nn.Linear(MODEL_HIDDEN_SIZE, MODEL_EMBEDDING_SIZE)
        state = load_state(self.weights)
        self.lstm.load_state_dict({k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[len("linear."):]: v for k, v in state.items() if k.startswith("linear.")})
        self.lstm.eval()
        self.linear.eval()

    def embed_partials(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mels -> (batch, 256) L2-normalised embeddings."""
        import torch

        with torch.no_grad():
            _, (hidden, _) = self.lstm(torch.from_numpy(np.ascontiguousarray(mels, dtype=np.float32)))
            raw = torch.relu(self.linear(hidden[-1]))
            return (raw / torch.norm(raw, dim=1, keepdim=True)).numpy()

    def embed_utterance(self, wav: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75) -> np.ndarray:
        wav_slices, mel_slices = partial_slices(len(wav), rate, min_coverage)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)), "constant")
        mel = wav_to_mel(wav)
        partials = self.embed_partials(np.array([mel[s] for s in mel_slices]))
        raw = np.mean(partials, axis=0)
        return (raw / np.linalg.norm(raw, 2)).astype(np.float32)
