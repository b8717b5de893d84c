"""voice-lane: a gated production lane that turns a speaker's recordings into a licensed, validated
TTS voice bundle.

The public surface is small and import-light (no torch, NeMo or papermill at import time):

- `LaneError`, `REASONS`: the failure taxonomy (lane.core.reasons)
- `StageRun`: what a stage notebook uses to record checks, stats and artifacts (lane.core.stage)
- `protocol`: the PROGRESS / STATS / ARTIFACT / [tts-prod] line protocol
"""

from .core import protocol
from .core.reasons import REASONS, LaneError
from .core.stage import StageRun

__version__ = "0.1.0"
__all__ = ["REASONS", "LaneError", "StageRun", "__version__", "protocol"]
