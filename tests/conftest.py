"""Fixtures shared by every test area (each area's own conftest.py adds its own)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trust anchors for the whole session, outside every workspace and out of the developer's own
    ~/.config (XDG_CONFIG_HOME points at a session folder too), inherited by the runs' kernels and CLI
    subprocesses: the signing key, the trusted-keys file and the rollback witness folder."""
    anchors = tmp_path_factory.mktemp("anchors")
    key = anchors / "signing-ed25519.pem"
    os.environ["LANE_SIGNING_KEY"] = str(key)
    os.environ["LANE_TRUSTED_KEYS"] = str(anchors / "trusted-keys")
    os.environ["LANE_WITNESS_DIR"] = str(anchors / "witness")
    os.environ["XDG_CONFIG_HOME"] = str(anchors / "xdg")
    return key


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def python_exe() -> str:
    """The interpreter running the tests (the venv's), for subprocess tests."""
    return sys.executable


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A throwaway workspace root with the repo's configs/ and notebooks/ copied in, so runs write
    their artifacts/, runs/, reports/ and bundles/ under tmp_path and never into the checkout."""
    for name in ("configs", "notebooks"):
        src = REPO / name
        if src.exists():
            shutil.copytree(src, tmp_path / name)
    return tmp_path


# Fixtures shared across areas live in uniquely named modules beside this file (a module called
# `conftest` is ambiguous when several test folders have one); tests import their helpers by name.
pytest_plugins = ["lane_runs", "cli_runs", "nemo_runs", "validate_runs"]
