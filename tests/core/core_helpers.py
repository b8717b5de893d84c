"""Plain helpers for the lane-core tests (imported by name: a module called `conftest` is ambiguous
when several test folders have one)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "notebooks"
STAGES = ("verify", "train", "export", "validate")


def fixture_nb(name: str) -> Path:
    path = FIXTURES / f"{name}.ipynb"
    assert path.is_file(), path
    return path


def make_workspace(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "configs", path / "configs", dirs_exist_ok=True)
    return path


def run_fixtures(root: Path, notebooks: Mapping[str, str], *, run_id: str | None = None, resume: bool = False,
                 cell_timeout_s: int = 60, extra_params: Mapping[str, Any] | None = None) -> Any:
    """Run `notebooks` (stage -> fixture name, in order) with the real runner."""
    from lane.core.config import Settings
    from lane.runner import execute_run

    settings = Settings(stages=list(notebooks), cell_timeout_s=cell_timeout_s)
    return execute_run(settings, root, run_id=run_id, resume=resume,
                       notebooks={s: fixture_nb(n) for s, n in notebooks.items()}, extra_params=extra_params)
