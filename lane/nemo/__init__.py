"""NeMo FastPitch + HiFi-GAN training, export and synthesis for the lane.

Everything here imports torch/NeMo lazily (inside functions), so importing `lane.nemo` is cheap and a
missing NeMo shows up as `LaneError("nemo_runtime_unavailable")` when a function needs it.
"""

from __future__ import annotations

from .train import TrainResult, import_nemo, train_voice

__all__ = ["TrainResult", "import_nemo", "train_voice"]
