"""Fixtures for the lane-core tests: fixture notebooks, a helper that runs them through the real
runner (papermill + a real ipykernel), and one completed four-stage run shared by read-only tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import STAGES, fixture_nb, make_workspace, run_fixtures  # noqa: F401


@pytest.fixture
def runner() -> Callable[..., Any]:
    return run_fixtures


@pytest.fixture(scope="session")
def completed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One honest four-stage run of the passing fixture (promotable evidence included): (root, outcome)."""
    root = make_workspace(tmp_path_factory.mktemp("completed"))
    outcome = run_fixtures(root, dict.fromkeys(STAGES, "pass"), extra_params={"promotable": True})
    assert outcome.status == "completed", outcome
    return root, outcome


@pytest.fixture
def completed_copy(completed_run: tuple[Path, Any], tmp_path: Path) -> tuple[Path, Any]:
    """A private copy of the completed run's workspace, for tests that tamper with it."""
    root, outcome = completed_run
    dst = tmp_path / "ws"
    shutil.copytree(root, dst)
    return dst, outcome
