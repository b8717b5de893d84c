"""voice-lane: a gated production lane that turns a speaker's recordings into a licensed, validated
TTS voice bundle.

The public surface is small and import-light (no torch, NeMo or papermill at import time); everything
else lives in the packages below and may change between versions:

- `LaneError`, `REASONS`, `Reason`: the failure taxonomy, one exception root (lane.core.reasons)
- `StageRun`: what a stage notebook uses to record checks, stats and artifacts (lane.core.stage)
- `protocol`: the PROGRESS / STATS / ARTIFACT / [tts-prod] line protocol (lane.core.protocol)
- `Settings`, `resolve_settings`, `load_profile`: settings with their precedence, and profiles
- `execute_run`, `RunOutcome`: run (or resume) the stages in this Python (lane.runner)

Packages: core (contracts), runner (the run loop), stages (verify, train, export, validate),
data, nemo, bundle, metrics, text, report, backends; `lane.cli` is the `lane` command.
"""

from .core import protocol
from .core.config import Settings, load_profile, resolve_settings
from .core.reasons import REASONS, LaneError, Reason
from .core.stage import StageRun
from .core.version import VERSION
from .runner import RunOutcome, execute_run

__version__ = VERSION
__all__ = ["REASONS", "LaneError", "Reason", "RunOutcome", "Settings", "StageRun", "__version__", "execute_run",
           "load_profile", "protocol", "resolve_settings"]
