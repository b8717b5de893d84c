"""What every backend receives: the resolved settings and where the run lives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.config import Settings
    from ..core.lanes import LaneSpec
    from ..core.status import OrchestratorLog


@dataclass
class RunContext:
    settings: Settings
    root: Path
    run_id: str
    resume: bool
    lane: LaneSpec
    log: OrchestratorLog
    config_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


Backend = Callable[[RunContext], int]
