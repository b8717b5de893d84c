"""What a stage notebook receives: the runner injects every setting plus the run's own parameters
(root, run_id, run_dir, stage, resume) into the notebook's `parameters` cell. `StageParams` collects
them, with the defaults a person gets when opening a notebook by hand from notebooks/ (root="..",
the demo inputs).

A notebook does::

    p = StageParams.from_namespace(globals())   # the parameters cell's variables
    st = p.open("export")                        # StageRun for this run (or the newest run, by hand)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import Settings
from ..core.stage import StageRun, latest_run_id


@dataclass
class StageParams(Settings):
    """Every setting (lane.core.config.Settings: declared there, with its default) plus the run's own
    parameters. The notebooks' parameters cells list exactly these names (a test checks them)."""

    root: str = ".."
    run_id: str | None = None
    run_dir: str | None = None
    stage: str = ""
    resume: bool = False
    config_snapshot: str | None = None  # the run's frozen configuration (lane.core.snapshot); None by hand

    def __post_init__(self) -> None:
        self.root = str(Path(self.root).resolve())  # before open() changes the working directory

    @classmethod
    def from_namespace(cls, ns: Mapping[str, Any]) -> StageParams:
        """Collect the parameters from a notebook's namespace (`globals()`): every field present there
        (the parameters cell, then papermill's injected values), the defaults for the rest."""
        names = {f.name for f in dataclasses.fields(cls) if f.name != "sources"}
        values = {k: ns[k] for k in names if k in ns}
        return cls(**values)

    def profile_config(self) -> dict[str, Any]:
        """The run's profile as frozen when it started (the live profile file for a notebook opened by hand)."""
        from ..core.snapshot import frozen_profile

        return frozen_profile(self.config_snapshot, self.profile, self.root_path)

    @property
    def root_path(self) -> Path:
        return Path(self.root).resolve()

    def path(self, value: str | os.PathLike[str]) -> Path:
        """A workspace-relative path made absolute (absolute paths stay as they are)."""
        p = Path(value)
        return p if p.is_absolute() else self.root_path / p

    def open(self, stage: str, *, continue_after: str | None = None) -> StageRun:
        """The StageRun for `stage`. Opened by hand without a run id, `continue_after` names the stage
        whose newest run to continue (e.g. export continues the newest run whose train finished);
        otherwise an ad-hoc run directory is made. The working directory becomes the workspace root,
        so every relative path means the same file as under `lane run`."""
        root = self.root_path
        os.chdir(root)
        run_id = self.run_id
        if run_id is None and self.run_dir is None and continue_after:
            run_id = latest_run_id(root, continue_after)
        return StageRun.open(stage, root=root, run_id=run_id, run_dir=self.run_dir, lane=self.lane)
