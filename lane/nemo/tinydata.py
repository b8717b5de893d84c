"""A tiny espeak-ng speech dataset in the dataset stage's layout, for tests and benches.

It mirrors lane.data.DatasetResult (train/val NeMo manifests with absolute paths, a TTSDataset pitch
cache under sup_data_dir, pitch statistics and settings), so training code sees what the data stage
produces. Pitch comes from the data stage's estimator (lane.data.pitch: pyworld on pyin's frame grid)
and is written into NeMo's TTSDataset cache layout; `pitch="pyin"` uses librosa.pyin as NeMo itself would.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "A stitch in time saves nine.",
    "Every good boy deserves fudge, they said.",
    "Pack my box with five dozen liquor jugs.",
    "How vexingly quick daft zebras jump!",
    "The five boxing wizards jump quickly.",
    "Bright vixens jump; dozy fowl quack.",
    "We promptly judged antique ivory buckles.",
    "Sphinx of black quartz, judge my vow.",
    "Waltz, bad nymph, for quick jigs vex.",
    "Jackdaws love my big sphinx of quartz.",
]

PITCH_SETTINGS = {"fmin": 65.0, "fmax": 2093.0, "hop_length": 256, "win_length": 1024, "n_fft": 1024,
                  "sample_rate": 22050}


def make_tiny_dataset(out: str | Path, n: int = 12, voice: str = "en-us", n_val: int = 2,
                      rate_wpm: int = 175, pitch: str = "pyworld") -> SimpleNamespace:
    import numpy as np
    import soundfile as sf

    from ..data.espeak import speak

    out = Path(out)
    wav_dir = out / "wavs"
    sup = out / "sup_data"
    (sup / "pitch").mkdir(parents=True, exist_ok=True)
    rows = []
    voiced: list[float] = []
    for i in range(n):
        text = SENTENCES[i % len(SENTENCES)]
        wav = speak(text, wav_dir / f"clip{i:03d}.wav", voice=voice, rate_wpm=rate_wpm + 7 * (i // len(SENTENCES)))
        audio, sr = sf.read(str(wav), dtype="float32")
        pitch_file = sup / "pitch" / f"clip{i:03d}.pt"
        f0 = _pitch(audio, sr) if pitch == "pyin" else _pitch_pyworld(audio, sr)
        voiced.extend(float(x) for x in f0 if x > 0)
        _save_pt(f0, pitch_file)
        rows.append({"audio_filepath": str(wav.resolve()), "text": text, "duration": round(len(audio) / sr, 3)})
    train, val = rows[: n - n_val] if n_val else rows, rows[n - n_val:] if n_val else rows[:1]
    for name, part in (("train_manifest.json", train), ("val_manifest.json", val)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    arr = np.asarray(voiced, dtype=np.float64)
    stats = {"pitch_mean": float(arr.mean()), "pitch_std": float(arr.std()),
             "pitch_min": float(arr.min()), "pitch_max": float(arr.max())}
    return SimpleNamespace(train_manifest=out / "train_manifest.json", val_manifest=out / "val_manifest.json",
                           sup_data_dir=sup, pitch_stats=stats, pitch_settings=dict(PITCH_SETTINGS),
                           sample_rate=22050, dataset_sha256=None, root=out)


def _pitch_pyworld(audio: Any, sr: int) -> Any:
    from ..data.pitch import PitchSettings, estimate

    p = PITCH_SETTINGS
    return estimate(audio, PitchSettings(sample_rate=int(sr), fmin=float(p["fmin"]), fmax=float(p["fmax"]),
                                         hop_length=int(p["hop_length"]), win_length=int(p["win_length"]),
                                         n_fft=int(p["n_fft"])))


def _pitch(audio: Any, sr: int) -> Any:
    import librosa

    f0, _, _ = librosa.pyin(audio, fmin=PITCH_SETTINGS["fmin"], fmax=PITCH_SETTINGS["fmax"],
                            frame_length=int(PITCH_SETTINGS["win_length"]), sr=sr, fill_na=0.0)
    return f0.astype("float32")


def _save_pt(arr: Any, path: Path) -> None:
    import torch

    torch.save(torch.from_numpy(arr), path)
