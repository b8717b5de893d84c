"""Runs of the fixture notebooks through the real runner (papermill + a real ipykernel), and the
fixtures built on them (a pytest plugin, loaded by tests/conftest.py; import helpers by this name)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "notebooks"
STAGES = ("verify", "train", "export", "validate")


def fixture_nb(name: str) -> Path:
    path = FIXTURES / f"{name}.ipynb"
    assert path.is_file(), path
    return path


def install_notebooks(root: Path, notebooks: Mapping[str, str], code: Mapping[str, str] | None = None) -> Path:
    """Make fixture notebooks the workspace's own (root/notebooks/<stage>.ipynb, which the runner
    prefers to the packaged ones), so a real `lane run` (CLI, job API, Slurm job) runs them.
    `code[stage]` is a cell inserted right after the parameters cell (after papermill's injected
    values too): e.g. "sleep_s = 600" for the `sleeps` fixture."""
    import json

    (root / "notebooks").mkdir(parents=True, exist_ok=True)
    for stage, name in notebooks.items():
        nb = json.loads(fixture_nb(name).read_text(encoding="utf-8"))
        if code and stage in code:
            at = next(i for i, c in enumerate(nb["cells"]) if "parameters" in c.get("metadata", {}).get("tags", []))
            nb["cells"].insert(at + 1, {"cell_type": "code", "id": f"{name}-inserted", "metadata": {},
                                        "execution_count": None, "outputs": [], "source": code[stage]})
        (root / "notebooks" / f"{stage}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    return root


def make_workspace(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "configs", path / "configs", dirs_exist_ok=True)
    return path


def run_fixtures(root: Path, notebooks: Mapping[str, str], *, run_id: str | None = None, resume: bool = False,
                 cell_timeout_s: int = 60, extra_params: Mapping[str, Any] | None = None, **settings_kw: Any) -> Any:
    """Run `notebooks` (stage -> fixture name, in order) with the real runner; `settings_kw` override
    Settings fields (profile, lane, voice_profile_id ...)."""
    from lane.core.config import Settings
    from lane.runner import execute_run

    settings = Settings(stages=list(notebooks), cell_timeout_s=cell_timeout_s, **settings_kw)
    return execute_run(settings, root, run_id=run_id, resume=resume,
                       notebooks={s: fixture_nb(n) for s, n in notebooks.items()}, extra_params=extra_params)


@pytest.fixture
def runner() -> Callable[..., Any]:
    return run_fixtures


@pytest.fixture(scope="session")
def completed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One honest four-stage run of the passing fixture with the production profile and the complete
    evidence a GO needs (licences, consent, promotable models, a valid bundle, every floored metric):
    (root, outcome). It ends GO."""
    root = make_workspace(tmp_path_factory.mktemp("completed"))
    outcome = run_fixtures(root, dict.fromkeys(STAGES, "pass"), extra_params={"promotable": True},
                           profile="production", voice_profile_id="fixture_voice")
    assert outcome.status == "completed", outcome
    return root, outcome


@pytest.fixture
def completed_copy(completed_run: tuple[Path, Any], tmp_path: Path) -> tuple[Path, Any]:
    """A private copy of the completed run's workspace, for tests that tamper with it."""
    root, outcome = completed_run
    dst = tmp_path / "ws"
    shutil.copytree(root, dst)
    return dst, outcome
